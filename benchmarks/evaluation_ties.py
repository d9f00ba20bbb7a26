"""evaluate() on packed vectors before and after exact scoring with ties by row (issue 22).

Loads an older ``gensim_bits/evaluation.py`` (from git) beside the current one and runs both
on the same packed vectors, alternating, to compare CPU time and answers:

    git show db76942~1:gensim_bits/evaluation.py > /tmp/evaluation_before.py
    python benchmarks/evaluation_ties.py --before /tmp/evaluation_before.py \\
        --vectors /work/shared/data/vectors/glove6b50d_100k.txt.gz \\
        --analogies /work/shared/data/analogy/google.txt --bits 2 --restrict-vocab 30000
"""
import argparse
import importlib.util
import json
import os
import shlex
import sys
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="path of the older evaluation.py")
    parser.add_argument("--vectors", required=True, help="word2vec text file (the data is not shipped)")
    parser.add_argument("--analogies", required=True)
    parser.add_argument("--bits", type=int, default=2)
    parser.add_argument("--restrict-vocab", type=int, default=30000)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--output", default=os.path.join("benchmarks", "results", "evaluation_ties.json"))
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    import gensim_bits.evaluation as after
    from gensim_bits import QuantizedKeyedVectors
    from gensim_bits.word2vec_format import read_word2vec

    spec = importlib.util.spec_from_file_location("evaluation_before", args.before)
    before = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(before)
    vectors = read_word2vec(args.vectors)
    vectors.vectors /= np.abs(vectors.vectors).max()
    packed = QuantizedKeyedVectors.from_keyed_vectors(vectors, bits=args.bits, quantize=True)
    runs = []
    for turn in range(args.turns):
        for name, module in (("before", before), ("after", after)):
            cpu, wall = time.process_time(), time.perf_counter()
            total = module.evaluate(packed, analogies=[args.analogies], restrict_vocab=args.restrict_vocab,
                                    verbose=False)["analogies"][os.path.basename(args.analogies)]["total"]
            run = {"turn": turn, "version": name, "cpu_seconds": round(time.process_time() - cpu, 2),
                   "wall_seconds": round(time.perf_counter() - wall, 2), "questions": total["questions"],
                   "correct_3cosadd": total["correct_3cosadd"], "correct_3cosmul": total["correct_3cosmul"]}
            runs.append(run)
            print(f"{turn} {name:<6} cpu {run['cpu_seconds']:6.1f} s  wall {run['wall_seconds']:6.1f} s  "
                  f"questions {run['questions']}  3CosAdd {run['correct_3cosadd']}  3CosMul {run['correct_3cosmul']}",
                  flush=True)
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as out:
        json.dump({"command": "python " + shlex.join(sys.argv), "bits": args.bits, "runs": runs}, out, indent=2)


if __name__ == "__main__":
    main()
