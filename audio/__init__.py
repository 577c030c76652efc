"""Speech synthesis, broadcast mastering, recorded uploads and content-addressed media storage.

Domain package: imports neither Flask nor paho-mqtt. Inside, imports go one way (no cycle): :mod:`audio.codec`
(ffmpeg, WAV/MP3) ← :mod:`audio.chimes`, :mod:`audio.tts` ← :mod:`audio.processing` (the broadcast chain)
← :mod:`audio.render`; :mod:`audio.upload` sits on codec, under render.

Entry points: :func:`render_announcement` (text → verified MP3, cache-aware), :func:`process_recording`
(uploaded file → verified MP3), :func:`render_speech` (older, simpler API), :func:`cli_tts`.
"""

from .chimes import CHIME_KINDS, chime_duration_ms, chime_pcm, chime_segment, chime_wav
from .processing import (
    AudioError,
    ChainSettings,
    Loudness,
    Mastered,
    RenderedAudio,
    change_tempo,
    decode,
    encode_mp3,
    ffmpeg_exe,
    master_audio,
    measure_loudness,
    prepare_for_broadcast,
    render_speech,
)
from .render import (
    RenderResult,
    announcement_key,
    cli_tts,
    engines_from_env,
    normalize_for_speech,
    process_recording,
    recording_key,
    render_announcement,
)
from .store import MediaInfo, MediaStore
from .tts import (
    ENGINE_NAMES,
    ESPEAK_VOICES,
    REGION_VOICES,
    EspeakEngine,
    GTTSEngine,
    HttpEngine,
    SpeechEngine,
    SpeechError,
    default_engines,
    synthesize_with_fallback,
)
from .upload import UploadError, validate_upload

__all__ = [
    "CHIME_KINDS",
    "ENGINE_NAMES",
    "ESPEAK_VOICES",
    "REGION_VOICES",
    "AudioError",
    "ChainSettings",
    "EspeakEngine",
    "GTTSEngine",
    "HttpEngine",
    "Loudness",
    "Mastered",
    "MediaInfo",
    "MediaStore",
    "RenderResult",
    "RenderedAudio",
    "SpeechEngine",
    "SpeechError",
    "UploadError",
    "announcement_key",
    "change_tempo",
    "chime_duration_ms",
    "chime_pcm",
    "chime_segment",
    "chime_wav",
    "cli_tts",
    "decode",
    "default_engines",
    "encode_mp3",
    "engines_from_env",
    "ffmpeg_exe",
    "master_audio",
    "measure_loudness",
    "normalize_for_speech",
    "prepare_for_broadcast",
    "process_recording",
    "recording_key",
    "render_announcement",
    "render_speech",
    "synthesize_with_fallback",
    "validate_upload",
]
