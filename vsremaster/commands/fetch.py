"""`python -m vsremaster fetch`: download the authors' weights into the user data folder."""
from __future__ import annotations

import sys

from .. import weights

HELP = "download the authors' remasternet.pth.tar (resumable, MD5-verified)"


def add_arguments(parser) -> None:
    """Options; the URL and MD5 also come from $VSREMASTER_FETCH_URL / _MD5."""
    parser.add_argument("--url", help=f"where to download from (default: "
                        f"${weights.ENV_FETCH_URL}, else {weights.AUTHORS_URL})")
    parser.add_argument("--md5", help=f"expected MD5 (default: ${weights.ENV_FETCH_MD5}, "
                        f"else {weights.AUTHORS_MD5})")
    parser.add_argument("--dest", help="file to write (default: "
                        f"<user data dir>/{weights.AUTHORS_FILENAME})")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args) -> int:
    """Download, print the saved path; 1 with the reason on stderr when it fails."""
    try:
        path = weights.fetch(args.url, args.md5, args.dest, progress=not args.quiet)
    except weights.FetchError as e:
        print(f"fetch failed: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0
