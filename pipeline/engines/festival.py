"""Festival (Debian's festival + festvox voices), run as a program with an argument list."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from pipeline.audio import Audio
from pipeline.engines import EngineFailure
from pipeline.lexicon import Mode
from pipeline.voices import Voice

DEFAULT_VOICE = "cmu_us_slt_arctic_hts"
_VOICE_NAME = re.compile(r"^[a-z0-9_]+$")
_INSTALL_HINT = (
    "install Debian's festival and the voice: apt-get install festival festvox-us-slt-hts "
    "('make episode' does this)"
)
# Each program runs in its own process group, killed whole on a timeout; setpriv (Debian's
# util-linux) makes the kernel kill it if the worker that started it dies.
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


@dataclass
class FestivalEngine:
    """A Festival voice, driven through ``text2wave``."""

    program: str
    """Path of ``text2wave``."""

    voice_name: str
    """Festival voice, e.g. ``cmu_us_slt_arctic_hts``."""

    rate: float
    """Speaking rate, passed to the HTS engine as ``-r`` (Duration_Stretch has no effect on HTS)."""

    timeout: float
    """Seconds ``text2wave`` may take over one sentence."""

    fingerprint: str = ""
    """Festival's version, the voice and its pace."""

    scratch_mb_per_char: float = 0.1
    """Memory per character of a sentence being spoken, MB (text2wave holds a few MB
    whatever the sentence)."""

    name: str = "festival"
    """Engine name."""

    phoneme_set: None = None
    """Festival reads text: the lexicon gives it respellings."""

    lexicon_mode: Mode = Mode.RESPELL
    """Lexicon terms respelled."""

    @staticmethod
    def load(voice: Voice) -> FestivalEngine:
        """Check that Festival and the voice are installed."""
        voice_name = voice.model or DEFAULT_VOICE
        if not _VOICE_NAME.match(voice_name):
            raise voice.error(f"{voice_name!r} is not a Festival voice name", "model")
        if voice.speaker is not None:
            raise voice.error("Festival voices have one speaker; remove 'speaker'", "speaker")
        program, festival = shutil.which("text2wave"), shutil.which("festival")
        if program is None or festival is None:
            raise voice.error(
                "Festival is not installed (text2wave not found)", "engine", hint=_INSTALL_HINT
            )
        try:
            installed = _installed_voices(festival, voice.timeout)
            version = _run([festival, "--version"], b"", voice.timeout).stdout.decode().strip()
        except subprocess.TimeoutExpired:
            raise voice.error(
                f"Festival did not answer within {voice.timeout:g} s ({festival})",
                "engine",
                hint="check the installation: 'festival --version' should answer at once; "
                f"{_INSTALL_HINT}",
            ) from None
        if voice_name not in installed:
            raise voice.error(
                f"Festival voice {voice_name!r} is not installed",
                "model",
                hint=f"installed: {', '.join(installed) or 'none'}; {_INSTALL_HINT}",
            )
        fingerprint = f"festival {version} voice {voice_name} rate {voice.rate:.6f}"
        return FestivalEngine(
            program=program,
            voice_name=voice_name,
            rate=voice.rate,
            timeout=voice.timeout,
            fingerprint=fingerprint,
        )

    def warm(self) -> None:
        """Nothing to load: ``load`` has already asked Festival for the voice."""

    @staticmethod
    def input_bytes(text: str) -> bytes:
        """What ``text2wave`` reads on stdin for ``text``: Latin-1, as Festival expects."""
        return text.encode("latin-1", errors="replace")

    def synthesize(self, text: str) -> Audio:
        """Speak ``text``: it goes in on stdin, never through a shell."""
        # HTS voices take their pace from hts_engine's -r option, not Duration_Stretch.
        rate_setup = (
            "(set! hts_engine_params (append hts_engine_params "
            f'(list (list "-r" {self.rate:.4f}))))'
        )
        with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
            out = Path(tmp) / "turn.wav"
            args = [self.program, "-o", str(out), "-eval", f"(voice_{self.voice_name})"]
            if self.rate != 1.0:
                args += ["-eval", rate_setup]
            args.append("-")
            try:
                result = _run(args, self.input_bytes(text), self.timeout)
            except subprocess.TimeoutExpired:
                raise EngineFailure(f"text2wave took longer than {self.timeout:g} s") from None
            stderr = result.stderr.decode("utf-8", errors="replace").strip()
            # text2wave exits 0 even after a Scheme error, so read stderr too.
            if result.returncode != 0 or "SIOD ERROR" in stderr or not out.is_file():
                detail = stderr.splitlines()[-1] if stderr else f"exit code {result.returncode}"
                raise EngineFailure(f"text2wave failed: {detail}")
            try:
                samples, rate = soundfile.read(out, dtype="float32", always_2d=True)
            except (RuntimeError, OSError) as exc:  # soundfile's errors are RuntimeErrors
                raise EngineFailure(f"text2wave wrote a WAV that cannot be read: {exc}") from None
        return Audio(np.ascontiguousarray(samples[:, 0]), int(rate))


def _installed_voices(festival: str, timeout: float) -> list[str]:
    result = _run([festival, "-b", "(print (voice.list))"], b"", timeout)
    return re.findall(r"[a-z0-9_]+", result.stdout.decode("utf-8", errors="replace"))


def _run(args: list[str], data: bytes, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run a Festival program; on a timeout kill it and everything it started, and raise
    ``TimeoutExpired``."""
    with subprocess.Popen(
        [*_DIE_WITH_PARENT, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    ) as process:
        try:
            stdout, stderr = process.communicate(data, timeout=timeout)
        except BaseException:  # a timeout, or Ctrl-C: leave nothing running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
