"""Spoken lines on disk, under ``data_dir/speech``, the newest ``keep_files`` of them.

Each line is one WAV file named by its speech id. Ids sort by the time they were made, so the
retention rule (keep the newest, delete the rest) needs no index. WAV rather than Opus: every
browser's Web Audio (OBS's embedded Chromium included) decodes 16-bit PCM WAV with no codec,
the file is complete as soon as it is written, and nothing has to be installed to encode it;
a sentence is 2 to 6 s, 90 to 260 KB at 22,050 Hz, and the retention limit bounds the disk.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from pathlib import Path

from tradecast.errors import NotFound

SPEECH_ID = re.compile(r"^sp-\d{13}-\d{4}$")


class SpeechStore:
    """WAV files of spoken lines, newest kept."""

    def __init__(self, folder: Path, keep_files: int) -> None:
        self.folder = folder
        self.keep_files = keep_files
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def new_id(self) -> str:
        """A fresh speech id (milliseconds since the epoch, then a per-process counter)."""
        return f"sp-{int(time.time() * 1000):013d}-{next(self._counter) % 10_000:04d}"

    def save(self, speech_id: str, wav: bytes) -> Path:
        """Write one line's audio (atomically: readers never see half a file) and drop the
        oldest lines past ``keep_files``."""
        self._check(speech_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{speech_id}.wav"
        partial = path.with_suffix(".part")
        partial.write_bytes(wav)
        partial.replace(path)
        self._prune()
        return path

    def path(self, speech_id: str) -> Path:
        """The file of ``speech_id``.

        Raises:
            NotFound: no such line (never was, or it was pruned).
        """
        self._check(speech_id)
        path = self.folder / f"{speech_id}.wav"
        if not path.is_file():
            raise NotFound(f"no speech {speech_id!r} (kept: the newest {self.keep_files})")
        return path

    def ids(self) -> list[str]:
        """The ids kept, oldest first."""
        return sorted(p.stem for p in self.folder.glob("sp-*.wav"))

    def _prune(self) -> None:
        with self._lock:
            kept = self.ids()
            for speech_id in kept[: max(0, len(kept) - self.keep_files)]:
                (self.folder / f"{speech_id}.wav").unlink(missing_ok=True)

    @staticmethod
    def _check(speech_id: str) -> None:
        if not SPEECH_ID.match(speech_id):
            raise NotFound(f"no speech {speech_id!r}: ids look like sp-<13 digits>-<4 digits>")
