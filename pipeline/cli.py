"""Command line: ``python -m pipeline render|check|qa|publish|engines|models``.

Each command imports only the stages it runs, so ``check`` and ``engines`` start without
loading the mixer, the encoder, the plotting, QA or publishing libraries."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

WORDS_PER_MINUTE = 150  # a typical podcast pace, for the length estimate
LONG_TURN_WORDS = 120  # longer turns lose a listener; the summary flags them


def _voice_override(value: str) -> tuple[str, Path]:
    speaker, sep, path = value.partition("=")
    if not sep or not speaker or not path:
        raise argparse.ArgumentTypeError(f"expected SPEAKER=voices/file.yaml, got {value!r}")
    return speaker, Path(path)


def _megabytes(value: str) -> float:
    try:
        amount = float(value)
    except ValueError:
        amount = 0.0
    if not amount > 0:
        raise argparse.ArgumentTypeError(f"expected megabytes above 0, got {value!r}")
    return amount


def _add_voice_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--voice",
        action="append",
        type=_voice_override,
        default=[],
        metavar="SPEAKER=FILE",
        help="use this voice file for a host instead of the one the script names "
        "(repeatable), e.g. --voice ALEX=voices/other.yaml",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with a subcommand per action."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Turn a marked-up two-host script into a podcast episode, offline.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_render(commands)
    _add_script_commands(commands)
    _add_publish(commands)
    _add_promo(commands)
    _add_qa(commands)
    return parser


Commands = Any  # argparse's subparsers action (its type is private)


def _add_render(commands: Commands) -> None:
    render_cmd = commands.add_parser(
        "render",
        help="synthesize, assemble and master the script into an MP3",
        description="Synthesize every turn with its host's voice, join them with natural "
        "gaps, master the loudness and encode an MP3. Writes OUTPUT and, beside it, "
        "OUTPUT.timeline.json (where every turn and chapter lands).",
    )
    render_cmd.add_argument(
        "script",
        type=Path,
        nargs="+",
        help="the episode script, e.g. script/episode.md; several: a season, rendered in "
        "one call (sharing the Ray pool), each to OUTPUT/<script name>.mp3",
    )
    render_cmd.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="MP3 to write (default: build/episode.mp3); with several scripts, the folder "
        "(default: build)",
    )
    _add_voice_flag(render_cmd)
    render_cmd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    render_cmd.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder of synthesized turns kept between renders (default: the project's "
        "build/cache, where the show's podcast.yaml is); safe to delete",
    )
    render_cmd.add_argument(
        "--no-cache", action="store_true", help="synthesize every turn again and keep nothing"
    )
    render_cmd.add_argument(
        "--report",
        type=Path,
        default=None,
        help="also write what the render did as JSON: seconds per stage, loudness, segments "
        "(make bench reads it)",
    )
    render_cmd.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes that synthesize in parallel (default: one per core)",
    )
    render_cmd.add_argument(
        "--memory",
        type=_megabytes,
        default=None,
        metavar="MB",
        help="most memory the render and its worker processes hold while they speak "
        "(default: 1000, or 500 a worker with more cores); a turn that would go past it "
        "waits, so more memory lets long Piper sentences be spoken side by side",
    )
    _add_executor(render_cmd)


def _add_executor(render_cmd: argparse.ArgumentParser) -> None:
    """Where a render's turns are spoken: here (once, or again on every change), or on a
    Ray cluster."""
    render_cmd.add_argument(
        "--watch",
        action="store_true",
        help="stay running, voices loaded, and render again whenever the script or a file "
        "it uses changes (the edit loop; Ctrl-C stops)",
    )
    render_cmd.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where turns are spoken: worker processes here (default), or a Ray cluster's "
        "workers (needs the 'ray' extra; the rest of the render stays here)",
    )
    render_cmd.add_argument(
        "--ray-address",
        default="auto",
        help="the Ray cluster's address, as 'ray start --head' prints it (default: auto, "
        "the cluster this machine belongs to or $RAY_ADDRESS)",
    )


def _add_script_commands(commands: Commands) -> None:
    """The commands that read the script and its voices only: check, engines, models."""
    check_cmd = commands.add_parser(
        "check",
        help="parse and validate the script and voices without rendering",
        description="Parse the script, load every host's voice file and engine, and print "
        "a summary. Exits non-zero, naming file:line, on the first problem.",
    )
    check_cmd.add_argument("script", type=Path, help="the episode script")
    _add_voice_flag(check_cmd)

    engines_cmd = commands.add_parser(
        "engines",
        help="list the engines the script's voices use (for set-up), without loading them",
    )
    engines_cmd.add_argument("script", type=Path, help="the episode script")
    _add_voice_flag(engines_cmd)

    models_cmd = commands.add_parser(
        "models",
        help="download the Coqui models and hibari voices the script's voices name (network)",
        description="Fetch every named Coqui model and hibari voice the hosts' voices use "
        "into the local cache, once, on a networked machine; renders never download.",
    )
    models_cmd.add_argument("script", type=Path, help="the episode script")
    _add_voice_flag(models_cmd)


def _add_publish(commands: Commands) -> None:
    publish_cmd = commands.add_parser(
        "publish",
        help="build the podcast site (feed, pages, media) and deliver it to the host",
        description="Build the site for the rendered episode and deliver it: media first, "
        "the feed last, each file atomically, unchanged files skipped. The target comes from "
        "podcast.yaml; --target and its settings override it.",
    )
    publish_cmd.add_argument(
        "--show",
        type=Path,
        default=Path("podcast.yaml"),
        help="show settings (default: podcast.yaml)",
    )
    publish_cmd.add_argument("--script", type=Path, default=Path("script/episode.md"))
    publish_cmd.add_argument(
        "--episode",
        type=Path,
        default=Path("build/episode.mp3"),
        help="the rendered episode's MP3, its other files beside it (default: "
        "build/episode.mp3); it must have been rendered from --script as it is now",
    )
    publish_cmd.add_argument(
        "--remove",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="take episode N out of the feed and pages (repeatable); without it, every "
        "episode already published is kept",
    )
    publish_cmd.add_argument(
        "--target",
        choices=("local", "sftp", "s3"),
        help="deliver here instead of podcast.yaml's target",
    )
    publish_cmd.add_argument("--path", help="local folder, or folder on the SFTP server")
    publish_cmd.add_argument("--host", help="SFTP host")
    publish_cmd.add_argument("--port", type=int, help="SFTP port")
    publish_cmd.add_argument("--user", help="SFTP user")
    publish_cmd.add_argument("--known-hosts", help="known_hosts file for SFTP")
    publish_cmd.add_argument("--endpoint", help="S3 endpoint URL (omit for AWS)")
    publish_cmd.add_argument("--region", help="S3 region")
    publish_cmd.add_argument("--bucket", help="S3 bucket")
    publish_cmd.add_argument("--prefix", help="S3 key prefix")


def _add_promo(commands: Commands) -> None:
    promo_cmd = commands.add_parser(
        "promo",
        help="cut the episode's soundbite into a square audiogram video for social media",
        description="Make an audiogram (1080 x 1080 MP4: the artwork, a moving waveform and "
        "burnt-in captions) of the soundbite the script marks with [soundbite], or the one "
        "the render picked. Publishing links it from the episode page.",
    )
    promo_cmd.add_argument("script", type=Path, help="the episode script")
    _add_input(promo_cmd)


def _add_input(command: argparse.ArgumentParser) -> None:
    """``-i``: the rendered episode a command reads."""
    command.add_argument(
        "-i",
        "--input",
        type=Path,
        default=Path("build/episode.mp3"),
        help="the rendered MP3, the rest of its output set beside it (default: build/episode.mp3)",
    )


def _promo(script_path: Path, mp3: Path) -> int:
    from pipeline.outputs import Manifest, OutputSet
    from pipeline.promo import make_promo
    from pipeline.script import parse_script

    script = parse_script(script_path)
    outputs = OutputSet(mp3)
    if not outputs.manifest.is_file():
        raise PipelineError(
            f"{outputs.manifest} is missing",
            hint=f"render the episode first ('make episode'), then make its promo from {mp3}",
        )
    built = Manifest.load(outputs.manifest)
    artwork = script.meta.artwork or script.meta.cover
    if artwork is None:
        raise PipelineError(
            "the script names no cover or artwork for the audiogram",
            path=script_path,
            hint="add 'cover: ../assets/cover.jpg' to the front matter",
        )
    promo = make_promo(outputs, built, artwork)
    bite = promo.soundbite
    how = "marked in the script" if bite.chosen else "picked by the render"
    print(
        f"wrote {promo.audiogram}: {bite.duration:.1f} s from {bite.start:.1f} s "
        f"({bite.title!r}, {how})"
    )
    return 0


def _add_qa(commands: Commands) -> None:
    qa_cmd = commands.add_parser(
        "qa",
        help="listen to the rendered MP3 with a speech recogniser and report what it heard",
        description="Decode every turn of the rendered MP3 with pocketsphinx and compare it "
        "with the script: word error rate per turn and host, the worst turns, each lexicon "
        "term as heard, words a minute. Writes qa.json and qa.md beside the MP3. A relative "
        "measure: it does not fail on a high error rate.",
    )
    qa_cmd.add_argument("script", type=Path, help="the episode script (for names and lexicon)")
    _add_input(qa_cmd)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    overrides = dict(getattr(args, "voice", []))
    # SIGTERM (timeout, systemd, a container stop) stops a run as Ctrl-C does: workers
    # killed, temporary files removed, the previous outputs kept.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        if args.command == "render":
            return _render(args, overrides)
        if args.command == "qa":
            return _qa(args.script, args.input)
        if args.command == "engines":
            from pipeline.script import parse_script
            from pipeline.voices import host_voices

            voices = host_voices(parse_script(args.script), overrides)
            print("\n".join(sorted({voice.engine for voice in voices.values()})))
            return 0
        if args.command == "models":
            return _models(args.script, overrides)
        if args.command == "publish":
            return _publish(args)
        if args.command == "promo":
            return _promo(args.script, args.input)
        return _check(args.script, overrides)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        how = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        if getattr(args, "watch", False):  # how a watch ends: nothing to resume
            print(
                f"{how}: watch ended; the outputs are its last finished render's", file=sys.stderr
            )
        else:
            print(
                f"{how}: the previous outputs are kept and the turns already spoken are "
                "cached; run the same command again to resume",
                file=sys.stderr,
            )
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


WATCH_S = 0.25  # how often --watch looks at its inputs


def _render(args: argparse.Namespace, overrides: dict[str, Path]) -> int:
    scripts: list[Path] = args.script
    if len(scripts) == 1:
        outputs = [args.output or Path("build/episode.mp3")]
    elif args.report is not None or (args.output and args.output.suffix.lower() == ".mp3"):
        raise PipelineError(
            "with several scripts, -o names a folder and --report is not taken",
            hint="render one script at a time for a report",
        )
    else:
        outputs = [(args.output or Path("build")) / f"{s.stem}.mp3" for s in scripts]
    if args.watch:
        if len(scripts) != 1 or args.executor != "local" or args.no_cache:
            raise PipelineError(
                "--watch renders one script, here, with its cache",
                hint="drop the other scripts, --executor or --no-cache",
            )
        return _watch(args, scripts[0], outputs[0], overrides)
    executor = None
    if args.executor == "ray":
        from pipeline.raypool import RayPool

        executor = RayPool(args.ray_address)
    try:
        for script, output in zip(scripts, outputs, strict=True):
            _render_one(args, script, output, overrides, executor)
    finally:
        if executor is not None:
            executor.close()
    return 0


def _watch(args: argparse.Namespace, script: Path, output: Path, overrides: dict[str, Path]) -> int:
    """Render, then again whenever an input changes (``state.up_to_date`` says which,
    checked a few times a second), keeping the stages imported and every voice loaded
    in its worker between renders (``Spares.keep``). A render that fails says why and
    the watch goes on; Ctrl-C ends it and its workers."""
    from pipeline.workers import Spares

    spares = Spares(keep=True)
    print(f"watching {script} and what it uses; Ctrl-C stops", flush=True)
    try:
        while True:
            started = time.perf_counter()
            try:
                if _render_one(args, script, output, overrides, None, spares, quiet=True):
                    print(f"rendered in {time.perf_counter() - started:.1f} s", flush=True)
            except PipelineError as exc:
                print(f"error: {exc}", file=sys.stderr, flush=True)
                _wait_for_change([script, *([exc.path] if exc.path else [])])
            time.sleep(WATCH_S)
    finally:
        spares.close(loaded=True)


def _wait_for_change(files: list[Path]) -> None:
    """After a failed render (no render state to compare with): until the script, or the
    file the error names, is written again."""

    def stamps() -> list[int]:
        return [f.stat().st_mtime_ns if f.exists() else 0 for f in files]

    before = stamps()
    while stamps() == before:
        time.sleep(WATCH_S)


def _render_one(
    args: argparse.Namespace,
    script: Path,
    output: Path,
    overrides: dict[str, Path],
    executor: Any,
    spares: Any = None,
    quiet: bool = False,
) -> bool:
    """Render one script unless it is up to date (``quiet``: without saying so); whether
    it rendered. ``spares``: the workers to start from (``workers.Spares``)."""
    from pipeline.cache import project_cache

    started = time.perf_counter()
    cache = None if args.no_cache else (args.cache or project_cache(script))
    if cache is not None and _up_to_date(
        args.report, script, output, overrides, cache, started, quiet
    ):
        return False
    from pipeline.workers import Spares

    spares = spares or Spares()
    if executor is None:  # a worker starts importing now, before the stages are imported
        spares.warm()
    try:
        from pipeline.render import render

        result = render(
            script,
            output,
            overrides,
            progress=not args.quiet and sys.stderr.isatty(),
            cache=cache,
            workers=args.workers,
            executor=executor,
            memory_mb=args.memory,
            spares=spares,
        )
    finally:
        spares.close()
    _tell(args, result)
    return True


def _tell(args: argparse.Namespace, result: Any) -> None:
    """Say what the render wrote (a ``render.RenderResult``), and write its report."""
    report = result.mastering
    measured = report.measured
    minutes, seconds = divmod(result.duration, 60)
    work = (
        "unchanged, not encoded again"
        if report.passes == 0
        else f"{report.passes} mastering pass{'es' if report.passes > 1 else ''}; "
        f"last pass encoded {result.segments_encoded} of "
        f"{result.segments_encoded + result.segments_reused} segments"
        + (f", {result.segments_ahead} of them ahead" if result.segments_ahead else "")
    )
    print(
        f"wrote {result.outputs.mp3}: {int(minutes)}:{seconds:04.1f}, {result.turns} turns, "
        f"{measured.loudness_lufs:.1f} LUFS, true peak {measured.true_peak_db:.1f} dBTP, "
        f"loudness range {measured.loudness_range:.1f} LU ({work})"
    )
    for path in result.outputs.files()[1:]:
        print(f"wrote {path}")
    if args.report is not None:
        from pipeline.files import write_json

        done = {
            "duration_s": round(result.duration, 3),
            "turns": result.turns,
            "stages_s": result.stages,
            "mastering_passes": report.passes,
            "segments_encoded": result.segments_encoded,
            "segments_reused": result.segments_reused,
            "segments_ahead": result.segments_ahead,
            "loudness_lufs": round(measured.loudness_lufs, 2),
            "true_peak_db": measured.true_peak_db,
        }
        write_json(args.report, done)


def _up_to_date(
    report: Path | None,
    script: Path,
    output: Path,
    overrides: dict[str, Path],
    cache: Path,
    started: float,
    quiet: bool = False,
) -> bool:
    """Say so (unless ``quiet``) and do nothing if the last render to the output was made
    from the same files, options and code and its outputs are in place
    (``pipeline/state.py``)."""
    from pipeline.state import up_to_date

    state = up_to_date(cache, script, output, overrides)
    if state is None or quiet:
        return state is not None
    measured = state.report.measured
    print(
        f"{output} is up to date: its script, voices, music and code are unchanged "
        f"({measured.loudness_lufs:.1f} LUFS, true peak {measured.true_peak_db:.1f} dBTP)"
    )
    if report is not None:
        from pipeline.files import write_json

        spent = round(time.perf_counter() - started, 3)
        done = {"up_to_date": True, "stages_s": {"parse and check": spent}}
        done |= {"loudness_lufs": round(measured.loudness_lufs, 2)}
        write_json(report, done | {"true_peak_db": measured.true_peak_db})
    return True


def _check(script_path: Path, overrides: dict[str, Path]) -> int:
    from pipeline.facts import check_facts
    from pipeline.production import prepare

    production = prepare(script_path, overrides, warm=True)
    script, sheet = production.script, production.facts
    facts = check_facts(script, sheet) if sheet else None
    words: Counter[str] = Counter()
    turns: Counter[str] = Counter()
    longest = max(production.utterances, key=lambda u: len(u.turn.text.split())).turn
    for utterance in production.utterances:
        words[utterance.turn.speaker] += len(utterance.turn.text.split())
        turns[utterance.turn.speaker] += 1
    total_words = sum(words.values())
    longest_words = len(longest.text.split())
    print(f"{script.path}: ok")
    print(f"  {script.meta.podcast}, episode {script.meta.episode}: {script.meta.title}")
    print(
        f"  {total_words} words, about {total_words / WORDS_PER_MINUTE:.1f} min at "
        f"{WORDS_PER_MINUTE} words a minute; {sum(turns.values())} turns"
    )
    for speaker, host in script.meta.hosts.items():
        voice = production.voices[speaker]
        print(
            f"  {speaker} ({host.name}): {turns[speaker]} turns, {words[speaker]} words; "
            f"voice {voice.path} [{voice.engine} {voice.model or 'default'}]"
        )
    flag = f" (over {LONG_TURN_WORDS}: split it)" if longest_words > LONG_TURN_WORDS else ""
    print(f"  longest turn: {longest_words} words, {longest.speaker} at line {longest.line}{flag}")
    print(f"  {len(script.chapters)} chapters:")
    for chapter in script.chapters:
        print(f"    {chapter.title}")
    if sheet is None or facts is None:
        print("  figures: not checked (no 'facts:' fact sheet in the front matter)")
    else:
        print(f"  figures checked: {len(facts.figures)}, all match {sheet.path}")
        if sheet.unverified:
            print(f"  quotes not verified (no local copy): {', '.join(sheet.unverified)}")
        if facts.unused:
            print(f"  fact sheet entries not said: {', '.join(f.id for f in facts.unused)}")
    return 0


def _qa(script_path: Path, mp3: Path) -> int:
    from pipeline.lexicon import Lexicon
    from pipeline.outputs import OutputSet
    from pipeline.qa import listen, raw_turns, write_reports
    from pipeline.script import parse_script
    from pipeline.timeline import Timeline

    script = parse_script(script_path)
    lexicon = Lexicon.load(script.meta.lexicon) if script.meta.lexicon else Lexicon.empty()
    outputs = OutputSet(mp3)
    outputs.recover()  # finish a render that a kill interrupted mid-commit
    if not outputs.timeline.is_file():
        raise PipelineError(
            f"{outputs.timeline} not found", hint="render the episode first ('make episode')"
        )
    timeline = Timeline.load(outputs.timeline)
    report = listen(mp3, timeline, lexicon, raw_turns(script_path, timeline))
    names = {speaker: host.name for speaker, host in script.meta.hosts.items()}
    json_path, md_path = write_reports(report, mp3.parent, names)
    for speaker, summary in report.hosts.items():
        quality = (
            f"; DNSMOS raw {summary.mos_raw:.2f}, finished {summary.mos_finished:.2f} "
            f"over {summary.quality_turns} turns"
            if summary.mos_raw is not None and summary.mos_finished is not None
            else ""
        )
        pitch = (
            f", median pitch {summary.median_pitch_hz:.0f} Hz" if summary.median_pitch_hz else ""
        )
        print(
            f"{names.get(speaker, speaker)}: median WER {summary.median_wer:.2f} over "
            f"{summary.turns} turns, {summary.words_per_minute:.0f} words a minute{pitch}"
            f"{quality}"
        )
    for term in report.misheard:
        print(f"misheard: {term.term} ({term.misheard} of {term.uses} uses)")
    print(f"wrote {json_path} and {md_path}")
    return 0


def _models(script_path: Path, overrides: dict[str, Path]) -> int:
    from pipeline.engines import ENGINES
    from pipeline.script import parse_script
    from pipeline.voices import host_voices

    voices = host_voices(parse_script(script_path), overrides)
    fetched: set[Path] = set()
    for voice in voices.values():
        fetch = ENGINES[voice.engine].fetch
        if fetch is not None and voice.path.resolve() not in fetched:
            fetched.add(voice.path.resolve())
            print(f"{voice.engine} {voice.model or '(default)'}: {fetch(voice)}")
    if not fetched:
        print("no voice of this script has a model to fetch (only Coqui and hibari download)")
    return 0


TARGET_FLAGS = (
    "path",
    "host",
    "port",
    "user",
    "known_hosts",
    "endpoint",
    "region",
    "bucket",
    "prefix",
)


def _publish(args: argparse.Namespace) -> int:
    from pipeline.publish import publish
    from pipeline.show import Show, parse_target, target_kind, target_settings

    show = Show.load(args.show)
    flags = {key: getattr(args, key) for key in TARGET_FLAGS if getattr(args, key) is not None}
    target = None
    if args.target or flags:
        kind = args.target or target_kind(show.target)
        base = target_settings(show.target) if kind == target_kind(show.target) else {}
        target = parse_target(None, base | flags | {"kind": kind}, where=Path.cwd())
    report = publish(
        show,
        args.script,
        args.episode,
        target,
        args.remove,
        warn=lambda message: print(f"warning: {message}", file=sys.stderr),
    )
    print(
        f"published {report.episodes} episode(s) from {report.site}: "
        f"{len(report.uploaded)} file(s) sent, {len(report.skipped)} unchanged"
    )
    if report.rebuilt:
        print("  the target had no episodes.json: the episodes were read back from its feed")
    if report.kept:
        print(f"  kept episode(s) already published: {', '.join(map(str, report.kept))}")
    if report.removed:
        removed = ", ".join(map(str, report.removed))
        print(f"  removed from the feed, as asked: {removed} (their files stay on the target)")
    for name in report.uploaded:
        print(f"  sent {name}")
    return 0
