"""The desk's event sink: every event the graph streams goes onto the bus (and to whoever
watches the tick in progress, e.g. a LangGraph-style run).

It adds one event of its own: ``emotion`` on the persona channel, published just before a
sentence whose emotion tag differs from the previous sentence's.
"""

from __future__ import annotations

from collections.abc import Callable

from tradecast.bus import EventBus
from tradecast.desk.metrics import Metrics
from tradecast.domain import StreamEvent
from tradecast.logs import get_logger

log = get_logger(__name__)
EventObserver = Callable[[StreamEvent], None]


class EventPublisher:
    """Publishes desk events on the bus; an ``EventSink`` for :func:`open_desk`."""

    def __init__(self, bus: EventBus, metrics: Metrics | None = None) -> None:
        self.bus = bus
        self.metrics = metrics
        self._observers: list[EventObserver] = []
        self._emotion: str | None = None

    async def __call__(self, event: StreamEvent) -> None:
        if event.event == "token" and not event.data.get("text"):
            return  # an empty token says nothing; streams carry only what a client can show
        if event.channel == "persona" and event.event == "sentence":
            emotion = event.data.get("emotion")
            if emotion and emotion != self._emotion:
                self._emotion = emotion
                await self.publish(
                    event.model_copy(
                        update={
                            "event": "emotion",
                            "data": {
                                "emotion": emotion,
                                "decision_id": event.data.get("decision_id"),
                            },
                        }
                    )
                )
        await self.publish(event)

    async def publish(self, event: StreamEvent) -> StreamEvent:
        """Store ``event`` on the bus and tell the observers; returns it with its id."""
        stored = await self.bus.publish(event)
        if self.metrics is not None:
            self.metrics.events_published.labels(stored.channel).inc()
            if stored.event == "risk_rejection":
                self.metrics.risk_rejections.inc()
        for observer in tuple(self._observers):
            try:
                observer(stored)
            except Exception:  # an observer must never break the desk's stream
                log.exception("publisher.observer_failed", stream_event=stored.event)
        return stored

    def watch(self, observer: EventObserver) -> Callable[[], None]:
        """Call ``observer`` with every event from now on; returns the function that stops it."""
        self._observers.append(observer)

        def stop() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return stop
