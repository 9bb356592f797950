"""`python -m vsremaster render SCRIPT OUTPUT`: a whole film, in segments, resumable."""
from __future__ import annotations

import argparse
import signal
import sys

HELP = "render a script's output in segments on local workers or a Ray cluster, resumably"


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Segments are cut at the scene changes of the script's Remaster source and written\n"
        "losslessly into OUTPUT's name with .render (film.mkv -> film.render/), with a\n"
        "manifest; running the same command again resumes. OUTPUT by extension: .y4m is\n"
        "the stream vspipe -c y4m writes, .mkv is lossless FFV1, anything else goes through\n"
        "ffmpeg with --ffmpeg-args. Local workers each see one GPU (CUDA_VISIBLE_DEVICES),\n"
        "so a script's Remaster keeps device_index at its default.")
    parser.add_argument("script", metavar="SCRIPT", help="the .vpy script (its output 0)")
    parser.add_argument("output", metavar="OUTPUT", help="the file to write (.y4m, .mkv, ...)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local worker processes (default: one per CUDA device, else 1); "
                             "with --cluster, the most segments running at once")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="run on Ray: 'auto' (the cluster this machine is in), 'local' (a "
                             "private Ray on this machine with --workers CPUs) or an address")
    parser.add_argument("--segment-frames", type=int, metavar="K",
                        help="frames per segment, about (default 3000; cuts move to the nearest "
                             "scene change within K/2)")
    parser.add_argument("-a", "--arg", action="append", default=[], metavar="NAME=VALUE",
                        help="a global of the script, as with vspipe -a (repeatable)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue from the work folder's finished segments (the default)")
    mode.add_argument("--restart", action="store_true",
                      help="discard the work folder's segments and render everything again")
    parser.add_argument("--ffmpeg-args", default="", metavar="ARGS",
                        help="ffmpeg output arguments for OUTPUT, one string "
                             "(--ffmpeg-args='-c:v libx264 -crf 16'); not for .y4m")
    parser.add_argument("--segment-format", choices=["ffv1", "y4m"],
                        help="lossless segment files (default ffv1: FFV1 in Matroska)")
    parser.add_argument("--clean", action="store_true",
                        help="delete the work folder after OUTPUT is written")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    """0 when OUTPUT is written; 2 for a refusal, 1 for a failure, 130 when interrupted."""
    from ..render import RenderError, render

    def terminate(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, terminate)
    try:
        render(args.script, args.output, workers=args.workers, cluster=args.cluster,
               segment_frames=args.segment_frames, args=args.arg, restart=args.restart,
               ffmpeg_args=args.ffmpeg_args, segment_format=args.segment_format,
               clean=args.clean, progress=not args.no_progress)
    except RenderError as e:
        print(e, file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, before)
    return 0
