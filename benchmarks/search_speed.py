"""Packed Word2Bits search against gensim's float32 ``most_similar`` (Lam 2018, section 3:
1-bit cosine from Hamming distance, 2-bit values s1/2 + s2/4).

For 1 and 2 bits at several dimensions, on a vocabulary of random codes (search cost does
not depend on the values), it times top-10 ``most_similar`` of one word over the whole
vocabulary and a 3-word analogy query, gensim float32 and packed side by side in one run
(alternating blocks of queries), checks that both return the same similarities, and reports
the bytes in RAM: the codes against the float32 matrix, and the resident memory a fresh
process gains by loading each file.

    nice -n 10 python benchmarks/search_speed.py --words 100000 --dimensions 200 400 800
    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/search_speed.py --out benchmarks/results/search_speed_1thread.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from gensim_bits import QuantizedKeyedVectors, packing

BLOCK = 25  # queries per alternating block
# gensim's matrix-vector product uses every BLAS thread; set these to 1 to compare one core with one core.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def resident_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure_load(path, kind):
    """Run in a fresh process: RSS gained by loading ``path``, then after one query."""
    import gc

    from gensim.models import KeyedVectors

    gc.collect()
    before = resident_bytes()
    if kind == "gensim":
        vectors = KeyedVectors.load(path)
    else:
        vectors = QuantizedKeyedVectors.load(path, mmap="r" if kind == "packed-mmap" else None)
    loaded = resident_bytes() - before
    vectors.most_similar(vectors.index_to_key[0])
    return loaded, resident_bytes() - before


def load_in_subprocess(path, kind):
    """(RSS gained by the load, RSS gained after one query) in a fresh process."""
    output = subprocess.run([sys.executable, __file__, "--measure-load", path, kind],
                            capture_output=True, text=True, check=True)
    return [int(value) for value in output.stdout.split()[-2:]]


def timed(function, queries):
    start = time.perf_counter()
    for query in queries:
        function(query)
    return time.perf_counter() - start


def compare(packed, keyed_vectors, queries, query_kind):
    """Seconds a query for gensim and packed, alternating blocks; checks the similarities agree."""
    if query_kind == "word":
        def ours(word):
            return packed.most_similar(word, topn=10)

        def theirs(word):
            return keyed_vectors.most_similar(word, topn=10)
    else:
        def ours(words):
            return packed.most_similar(positive=words[:2], negative=words[2:], topn=10)

        def theirs(words):
            return keyed_vectors.most_similar(positive=words[:2], negative=words[2:], topn=10)
    for query in queries[:5]:
        np.testing.assert_allclose([value for _, value in ours(query)], [value for _, value in theirs(query)],
                                   atol=1e-5)
    ours(queries[0]), theirs(queries[0])  # warm up
    total = {"gensim": 0.0, "packed": 0.0}
    for start in range(0, len(queries), BLOCK):
        block = queries[start:start + BLOCK]
        total["gensim"] += timed(theirs, block)
        total["packed"] += timed(ours, block)
    return {name: seconds / len(queries) for name, seconds in total.items()}


def run_case(bits, dimension, words, query_count, folder, rng):
    codes = rng.integers(0, 2 ** bits, size=(words, dimension), dtype=np.uint8)
    keys = [f"w{index}" for index in range(words)]
    packed = QuantizedKeyedVectors(packing.pack_codes(codes, bits), bits, dimension, keys)
    keyed_vectors = packed.to_keyed_vectors()
    keyed_vectors.fill_norms()
    word_queries = [keys[index] for index in rng.integers(0, words, size=query_count)]
    analogy_queries = [[keys[index] for index in rng.choice(words, 3, replace=False)] for _ in range(query_count)]
    single = compare(packed, keyed_vectors, word_queries, "word")
    analogy = compare(packed, keyed_vectors, analogy_queries, "analogy")

    packed_path = os.path.join(folder, f"v{bits}_{dimension}.gbits")
    gensim_path = os.path.join(folder, f"v{bits}_{dimension}.kv")
    packed.save(packed_path)
    keyed_vectors.norms = None
    keyed_vectors.save(gensim_path)
    row = {
        "bits": bits, "dimension": dimension, "words": words, "queries": query_count,
        "gensim_ms": 1e3 * single["gensim"], "packed_ms": 1e3 * single["packed"],
        "speedup": single["gensim"] / single["packed"],
        "analogy_gensim_ms": 1e3 * analogy["gensim"], "analogy_packed_ms": 1e3 * analogy["packed"],
        "analogy_speedup": analogy["gensim"] / analogy["packed"],
        "gensim_vector_bytes": int(keyed_vectors.vectors.nbytes),
        "packed_code_bytes": packed.nbytes,
        "packed_norm_bytes": int(packed.norms.nbytes) if bits > 1 else 0,
        "gensim_file_bytes": os.path.getsize(gensim_path),
        "packed_file_bytes": os.path.getsize(packed_path),
    }
    for name, path, kind in (("gensim", gensim_path, "gensim"), ("packed", packed_path, "packed"),
                             ("packed_mmap", packed_path, "packed-mmap")):
        row[f"rss_{name}_load"], row[f"rss_{name}_query"] = load_in_subprocess(path, kind)
    row["memory_ratio"] = row["gensim_vector_bytes"] / row["packed_code_bytes"]
    os.unlink(packed_path)
    os.unlink(gensim_path)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=100000, help="vocabulary size")
    parser.add_argument("--dimensions", type=int, nargs="+", default=[200, 400, 800])
    parser.add_argument("--bits", type=int, nargs="+", default=[1, 2], choices=packing.PACKED_BITS)
    parser.add_argument("--queries", type=int, default=200, help="queries timed per case and query kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/search_speed.json")
    parser.add_argument("--measure-load", nargs=2, metavar=("PATH", "KIND"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_load:
        print(*measure_load(*args.measure_load))
        return 0

    rng = np.random.default_rng(args.seed)
    rows = []
    header = (f"{'bits':>4} {'dim':>5} {'gensim ms':>10} {'packed ms':>10} {'speedup':>8} {'3-word ms g/p':>15} "
              f"{'speedup':>8} {'float32 MB':>11} {'codes MB':>9} {'ratio':>6} {'load RSS MB g/p/mmap':>20}")
    print(f"{args.words} words, {args.queries} queries a case, top-10 over the whole vocabulary")
    print(header)
    with tempfile.TemporaryDirectory() as folder:
        for bits in args.bits:
            for dimension in args.dimensions:
                row = run_case(bits, dimension, args.words, args.queries, folder, rng)
                rows.append(row)
                megabyte = 1024 * 1024
                print(f"{bits:>4} {dimension:>5} {row['gensim_ms']:>10.2f} {row['packed_ms']:>10.2f} "
                      f"{row['speedup']:>7.1f}x {row['analogy_gensim_ms']:>7.2f}/{row['analogy_packed_ms']:<7.2f} "
                      f"{row['analogy_speedup']:>7.1f}x {row['gensim_vector_bytes'] / megabyte:>11.1f} "
                      f"{row['packed_code_bytes'] / megabyte:>9.2f} {row['memory_ratio']:>5.0f}x "
                      f"{row['rss_gensim_load'] / megabyte:>6.1f}/{row['rss_packed_load'] / megabyte:.1f}/"
                      f"{row['rss_packed_mmap_load'] / megabyte:.1f}", flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as out:
        json.dump({"command": "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:]),
                   "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
                   "blas_threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
                   "results": rows}, out, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
