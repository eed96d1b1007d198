"""How well the zero-shot scorer reads shown emotion, next to a majority and a keyword baseline.

    python benchmarks/scorer_eval.py              # held-out test lines: recall per emotion, macro-F1, throughput
    python benchmarks/scorer_eval.py --split dev  # the dev lines the constants were fitted on
    python benchmarks/scorer_eval.py --fit        # refit temperature and neutral offset on the dev lines

Prints only; writes nothing.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from storydiff.embedding import load_minilm
from storydiff.text.evaluation import evaluate, fit_calibration, keyword_labels, load_gold, majority_labels
from storydiff.text.scorer import CLASSES, default_scorer

GOLD = Path(__file__).resolve().parent.parent / "tests" / "data" / "scorer_gold.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--split", default="test", choices=["test", "dev"])
    parser.add_argument("--fit", action="store_true", help="fit the scorer's constants on the dev split")
    args = parser.parse_args()

    load_minilm()
    scorer = default_scorer()
    if args.fit:
        dev = load_gold(args.gold, "dev")
        sims = scorer.similarities(scorer.embed([line.text for line in dev]))
        temperature, bias = fit_calibration(sims, [line.label for line in dev])
        print(f"fitted on {len(dev)} dev lines: TEMPERATURE = {temperature}  NEUTRAL_BIAS = {bias}")
        return

    lines = load_gold(args.gold, args.split)
    texts = [line.text for line in lines]
    start = time.perf_counter()
    predicted = scorer.labels(texts)
    seconds = time.perf_counter() - start
    report = evaluate(lines, {"scorer": predicted, "keyword": keyword_labels(lines), "majority": majority_labels(lines)})

    counts = {label: sum(line.label == label for line in lines) for label in CLASSES}
    names = list(report.macro_f1)
    print(f"{args.split}: {len(lines)} lines from {', '.join(sorted({line.play for line in lines}))}")
    print(f"{'recall':<16}{'n':>4}" + "".join(f"{n:>10}" for n in names))
    for label in report.labels:
        print(f"{label:<16}{counts[label]:>4}" + "".join(f"{report.recall[n][label]:>10.2f}" for n in names))
    print(f"{'macro-F1':<20}" + "".join(f"{report.macro_f1[n]:>10.3f}" for n in names))
    print(f"{'accuracy':<20}" + "".join(f"{report.accuracy[n]:>10.3f}" for n in names))
    print(f"throughput: {len(texts) / seconds:.0f} speeches/s (batch 64, {torch.get_num_threads()} CPU threads)")


if __name__ == "__main__":
    main()
