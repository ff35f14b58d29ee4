"""``mcscomm plot TRACE -o session.png``: power, current, voltage and SoC of a session trace."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "plot a session trace (power, current, voltage, SoC; needs the 'plot' extra)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "trace", type=Path, help="a JSON Lines trace from 'mcscomm session --trace'"
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="image file (PNG, SVG or PDF; default: TRACE.png)"
    )
    parser.add_argument("--title", help="heading of the plot")


def run(args: argparse.Namespace) -> int:
    from mcscomm.plot import PlotUnavailable, plot_trace
    from mcscomm.trace import TraceError

    output: Path = args.output or args.trace.with_suffix(".png")
    try:
        plot_trace(args.trace, output, title=args.title)
    except UnicodeDecodeError:  # a ValueError whose text names neither the file nor the problem
        print(f"mcscomm plot: {args.trace}: not a JSON Lines text trace", file=sys.stderr)
        return 1
    except (PlotUnavailable, TraceError, ValueError, OSError) as exc:
        print(f"mcscomm plot: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0
