"""Speech synthesis, broadcast mastering and content-addressed media storage.

Domain package: imports neither Flask nor paho-mqtt.
"""

from .processing import (
    AudioError,
    RenderedAudio,
    change_tempo,
    decode,
    encode_mp3,
    ffmpeg_exe,
    prepare_for_broadcast,
    render_speech,
)
from .store import MediaInfo, MediaStore
from .tts import (
    ESPEAK_VOICES,
    EspeakEngine,
    GTTSEngine,
    SpeechEngine,
    SpeechError,
    default_engines,
    synthesize_with_fallback,
)

__all__ = [
    "ESPEAK_VOICES",
    "AudioError",
    "EspeakEngine",
    "GTTSEngine",
    "MediaInfo",
    "MediaStore",
    "RenderedAudio",
    "SpeechEngine",
    "SpeechError",
    "change_tempo",
    "decode",
    "default_engines",
    "encode_mp3",
    "ffmpeg_exe",
    "prepare_for_broadcast",
    "render_speech",
    "synthesize_with_fallback",
]
