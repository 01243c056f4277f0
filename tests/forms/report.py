"""Print the form table: every case with its size ratio, matcalc's printed form and the book's,
largest ratio first — the list to work down when simplifying and printing.

    python tests/forms/report.py                # the table, as text
    python tests/forms/report.py --markdown     # the same as a Markdown table
    python tests/forms/report.py --worst 20     # only the 20 largest ratios

It ends with the natural spellings matcalc refuses today (cases.py's ``natural_text``).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import matcalc as mc  # noqa: E402

from forms import harness as H  # noqa: E402
from forms.cases import CASES  # noqa: E402


def refused() -> list[tuple[str, str, str]]:
    """(case id, natural spelling, why matcalc refuses it) for each refused natural spelling."""
    out = []
    for case in CASES:
        if case.natural_text is None:
            continue
        try:
            H.derive(case, case.natural_text)
        except mc.MatcalcError as err:
            out.append((case.id, case.natural_text, str(err).splitlines()[0].split(";")[0]))
    return out


def _cell(text: str) -> str:
    return "`" + H.one_line(text).replace("|", "\\|") + "`"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--worst", type=int, default=None, help="only the N largest ratios")
    args = parser.parse_args(argv)
    measured = H.sizes()
    shown = measured if args.worst is None else measured[:args.worst]
    print(H.summary(measured, worst=0).splitlines()[0])
    print()
    if args.markdown:
        print("| case | ratio | matcalc | book | source |")
        print("|---|---|---|---|---|")
        for s in shown:
            print(f"| {s.case.id} | {s.ratio:.2f} ({s.matcalc_tokens}/{s.book_tokens}) | "
                  f"{_cell(s.matcalc)} | {_cell(s.book)} | {s.case.source} |")
    else:
        for s in shown:
            print(f"{s.ratio:6.2f}  {s.case.id}  ({s.matcalc_tokens} vs {s.book_tokens} tokens;"
                  f" {s.case.kind})")
            print(f"        matcalc: {H.one_line(s.matcalc)}")
            print(f"        book:    {H.one_line(s.book)}")
            print(f"        source:  {s.case.source}")
    print()
    print("Natural spellings matcalc refuses today:")
    for case_id, text, why in refused():
        print(f"  {case_id}: {text}\n      {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
