"""The persona's voice: text-to-speech backends, the speaking queue and the speech store."""
