"""Exact packed search (Lam 2018, section 3: 1-bit cosine from Hamming distance, 2-bit values
s1/2 + s2/4) against the tools a user would pick instead: faiss ``IndexBinaryFlat`` (the same
codes, exact), faiss's 2-bit options (``IndexRaBitQ`` nb_bits=2 and ``IndexScalarQuantizer``
4-bit, approximate, with their recall; ``IndexFlatIP`` exact float), usearch exact search,
and gensim's float32 ``most_similar``.

Each case is ``bits:dimension[:source]``, source ``random`` (uniform codes: the scan costs the
same whatever the values), ``glove`` (the shared GloVe 50-d vectors thresholded to 1 bit by
sign, or quantized to 2 bits) or ``word2bits`` (vectors trained by Word2Bits and saved by
``benchmarks/quality.py --save-dir``: the file ``BITS_DIMENSION.kv`` of ``--word2bits-dir``,
its ``--words`` most frequent words; the 1-bit Hamming pruning depends on real distances). For every case it measures, methods interleaved in blocks in
one process so that the machine's load hits them alike:

* single-query latency (top-10 of one query over the whole vocabulary): ``most_similar(word)``,
  ``search([word])``, ``search`` of one packed code, the kernel alone (the compiled scan for
  the word's row into ready buffers), faiss ``search`` of one code / vector, usearch, gensim,
  analogies (``most_similar(positive=[a, b], negative=[c])``, also against their kernel with
  the terms built beforehand); as wall time and as process CPU time (on a shared machine the
  wall time of a short call is mostly when the scheduler preempted it); each the median over
  blocks; the per-call overhead over the kernel alone (``overhead_us``);
* at 1 bit (16 bytes a code and more): the same calls with the kernel switched to its lower instruction sets
  (``@popcnt``, ``@avx2``), beside the best one the CPU runs, to see the blocked scan win;
* throughput of a batch of ``--batch`` queries at each ``--threads`` count: ``search(codes,
  workers=t)`` and ``search(words)`` against faiss with ``omp_set_num_threads(t)``
  (OMP_WAIT_POLICY=PASSIVE) and usearch with ``threads=t``;
* that the exact methods agree (identical distance lists, the by-word calls against faiss's
  top-11 less the word itself; every instruction set against the best), and the recall@10
  of the approximate ones against the exact top-10;
* resident memory per word after loading the ``.gbits`` file in a fresh process;
* the fraction of the memory-bandwidth bound: codes bytes / single-query time, against the
  read bandwidth of the same-size array (cache-resident) and of a 512 MB array (DRAM).

    OMP_WAIT_POLICY=PASSIVE nice -n 10 python benchmarks/search_speed.py
    nice -n 10 python benchmarks/search_speed.py --cases 1:256 --queries 50 --batch 200   # quick

faiss and usearch come from the ``bench`` extra (``pip install nlp-compress[bench]``).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before faiss loads its OpenMP runtime

import numpy as np  # noqa: E402

from gensim_bits import QuantizedKeyedVectors, packing  # noqa: E402
from gensim_bits import search  # noqa: E402
from gensim_bits.search_inner import available_instruction_sets, instruction_set, use_instruction_set  # noqa: E402,E501

TOPN = 10
BLOCK = 10  # single queries per interleaved block
DEFAULT_CASES = ["1:50:glove", "1:256", "1:800", "2:400", "2:50:glove"]
GLOVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "vectors",
                     "glove6b50d_100k.txt.gz")


def resident_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def measure_load(path):
    """Run in a fresh process: RSS gained by loading ``path``, then after one query."""
    import gc

    gc.collect()
    before = resident_bytes()
    vectors = QuantizedKeyedVectors.load(path)
    loaded = resident_bytes() - before
    vectors.most_similar(vectors.index_to_key[0])
    return loaded, resident_bytes() - before


def load_in_subprocess(path):
    output = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure-load", path],
                            capture_output=True, text=True, check=True)
    return [int(value) for value in output.stdout.split()[-2:]]


def read_bandwidth(nbytes, repeats=5):
    """Bytes per second of summing an int64 array of ``nbytes`` (best of ``repeats``)."""
    array = np.ones(max(1, nbytes // 8), dtype=np.int64)
    array.sum()
    best = min(_timed(array.sum) for _ in range(repeats))
    return array.nbytes / best


def _timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def make_case(bits, dimension, source, words, rng, glove_path, word2bits_dir=None):
    """The packed vectors of one case, or None when its source file is missing."""
    if source == "word2bits":
        path = os.path.join(word2bits_dir or "", f"{bits}_{dimension}.kv")
        if not word2bits_dir or not os.path.isfile(path):
            return None
        try:
            trained = QuantizedKeyedVectors.load(path)
        except ValueError:  # a Word2Bits model's wv saved by gensim: float32 values on the grid
            from gensim.models import KeyedVectors

            trained = QuantizedKeyedVectors.from_keyed_vectors(KeyedVectors.load(path), bits=bits)
        if trained.bits != bits or trained.vector_size != dimension:
            raise SystemExit(f"{path} holds {trained.bits}-bit d={trained.vector_size} vectors, not {bits}:{dimension}")
        keep = min(words, len(trained))
        return QuantizedKeyedVectors(np.ascontiguousarray(trained.codes[:keep]), bits, dimension,
                                     list(trained.index_to_key[:keep]))
    if source == "glove":
        from gensim.models import KeyedVectors

        if not os.path.isfile(glove_path):
            return None
        glove = KeyedVectors.load_word2vec_format(glove_path, limit=words)
        if glove.vector_size != dimension:
            raise SystemExit(f"GloVe has d={glove.vector_size}; use {bits}:{glove.vector_size}:glove")
        packed = QuantizedKeyedVectors.from_keyed_vectors(glove, bits=bits, quantize=True)
    else:
        codes = rng.integers(0, 2 ** bits, size=(words, dimension), dtype=np.uint8)
        packed = QuantizedKeyedVectors(packing.pack_codes(codes, bits), bits, dimension,
                                       [f"w{index}" for index in range(words)])
    return packed


def interleave(methods, items, block=BLOCK):
    """(wall, CPU) seconds a query for each method; blocks of ``items`` go to every method in turn.

    Each figure is the median over blocks of the block's time per query, so a block the
    scheduler preempted does not move it; the order of the methods turns from block to block. On a shared machine the wall time of a short call
    mostly measures when the scheduler preempted it; the process CPU time measures the
    call's own work (every method timed here runs on one thread).
    """
    wall = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    for function in methods.values():
        function(items[0])  # warm up
    names = list(methods)
    for number, start in enumerate(range(0, len(items), block)):
        chunk = items[start:start + block]
        # The order turns every block, so no method always runs right after one that evicted the caches.
        for name in names[number % len(names):] + names[:number % len(names)]:
            function = methods[name]
            begin, begin_cpu = time.perf_counter(), time.process_time()
            for item in chunk:
                function(item)
            wall[name].append((time.perf_counter() - begin) / len(chunk))
            cpu[name].append((time.process_time() - begin_cpu) / len(chunk))
    return ({name: float(np.median(values)) for name, values in wall.items()},
            {name: float(np.median(values)) for name, values in cpu.items()})


def with_instruction_set(name, function):
    """``function`` run with the kernel switched to instruction set ``name`` (then back to the best)."""
    def run(*args):
        use_instruction_set(name)
        try:
            return function(*args)
        finally:
            use_instruction_set(None)
    return run


def same_hamming(ours_scores, faiss_distances, dimension):
    """Queries whose top-k Hamming distances (from our cosines) equal faiss's."""
    ours = np.rint((1.0 - ours_scores.astype(np.float64)) * dimension / 2).astype(np.int64)
    return int(np.sum(np.all(ours == faiss_distances, axis=1)))


def recall(found, exact):
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / len(b) for a, b in zip(found, exact)]))


def run_case(spec, args, rng, folder):
    parts = spec.split(":")
    bits, dimension = int(parts[0]), int(parts[1])
    source = parts[2] if len(parts) > 2 else "random"
    packed = make_case(bits, dimension, source, args.words, rng, args.glove, args.word2bits_dir)
    if packed is None:
        print(f"skipping {spec}: its {'--word2bits-dir file' if source == 'word2bits' else '--glove file'} "
              "was not found")
        return None
    import faiss
    from gensim.models import KeyedVectors
    from usearch.index import MetricKind
    from usearch.index import search as usearch_search

    words = len(packed)
    codes = packed.codes
    row_bytes = codes.shape[1]
    query_rows = rng.choice(words, size=max(args.queries, args.batch), replace=words < args.batch)
    single_rows = query_rows[:args.queries]
    batch_codes = np.ascontiguousarray(codes[query_rows[:args.batch]])
    batch_keys = [packed.index_to_key[row] for row in query_rows[:args.batch].tolist()]
    keys = [packed.index_to_key[row] for row in single_rows.tolist()]
    values = packed.vectors_for(np.arange(words))  # float32 levels
    unit = values / np.linalg.norm(values, axis=1, keepdims=True)
    keyed_vectors = KeyedVectors(dimension)
    keyed_vectors.add_vectors(list(packed.index_to_key), values)
    keyed_vectors.fill_norms()
    row = {"case": spec, "bits": bits, "dimension": dimension, "source": source, "words": words,
           "code_bytes_per_word": row_bytes, "single_queries": len(single_rows), "batch_queries": len(batch_codes)}

    faiss.omp_set_num_threads(1)
    indexes = {}
    if bits == 1:
        binary = faiss.IndexBinaryFlat(8 * row_bytes)
        binary.add(codes)
        indexes["faiss_binary_flat"] = binary
        usearch_data, usearch_metric = codes, MetricKind.Hamming
    else:
        flat = faiss.IndexFlatIP(dimension)
        flat.add(unit)
        indexes["faiss_flat_ip"] = flat
        rabitq = faiss.IndexRaBitQ(dimension, faiss.METRIC_INNER_PRODUCT, 2)
        rabitq.train(unit)
        rabitq.add(unit)
        indexes["faiss_rabitq2"] = rabitq
        sq4 = faiss.IndexScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_4bit, faiss.METRIC_INNER_PRODUCT)
        sq4.train(unit)
        sq4.add(unit)
        indexes["faiss_sq4"] = sq4
        usearch_data, usearch_metric = unit, MetricKind.IP  # usearch has no 2-bit type: float32 exact
    faiss_queries = {name: (codes if bits == 1 else unit) for name in indexes}

    # ---- single queries, interleaved
    gensim_keys = keys[:args.gensim_queries]
    index = packed.packed_index
    row_of = dict(zip(keys, single_rows.tolist()))
    top_scores, top_rows = np.empty(TOPN), np.empty(TOPN, dtype=np.int64)
    methods = {
        # The kernel alone: the compiled scan for the word's row into ready buffers, nothing
        # looked up or built; most_similar(word) minus this is the per-call overhead.
        "ours_kernel_alone": lambda key: index.top_of_row(row_of[key], top_scores, top_rows),
        "ours_most_similar": lambda key: packed.most_similar(key, topn=TOPN),
        "ours_search_word": lambda key: packed.search([key], TOPN, workers=1),
        "ours_search": lambda key: packed.search(codes[row_of[key]][None], TOPN, workers=1),
    }
    scalar_sets = [name for name in available_instruction_sets() if name != "portable"][:-1]
    if bits == 1 and row_bytes >= 16:  # the blocked AVX2 / AVX-512 scan against the scalar one, same run
        for name in scalar_sets:
            methods[f"ours_most_similar@{name}"] = with_instruction_set(
                name, lambda key: packed.most_similar(key, topn=TOPN))
    for name, index_ in indexes.items():
        methods[name] = (lambda key, index_=index_, data=faiss_queries[name]:
                         index_.search(data[row_of[key]][None], TOPN))
    methods["usearch_exact"] = lambda key: usearch_search(usearch_data, usearch_data[row_of[key]], TOPN,
                                                          usearch_metric, exact=True, threads=1)
    single, single_cpu = interleave(methods, keys)
    analogies = [[packed.index_to_key[r] for r in rng.choice(words, 3, replace=False)] for _ in keys]
    analogy_terms = {}
    for analogy in analogies:
        terms = search.QueryTerms(bits, dimension)
        search.add_mean_query(packed, terms, analogy[:2], analogy[2:])
        analogy_terms[tuple(analogy)] = terms.arrays()
    for prefix, timed_methods, items in (
            ("gensim_", {"most_similar": lambda key: keyed_vectors.most_similar(key, topn=TOPN),
                         "ours_most_similar": lambda key: packed.most_similar(key, topn=TOPN)}, gensim_keys),
            ("analogy_", {"gensim": lambda q: keyed_vectors.most_similar(positive=q[:2], negative=q[2:], topn=TOPN),
                          "ours": lambda q: packed.most_similar(positive=q[:2], negative=q[2:], topn=TOPN)},
             analogies[:args.gensim_queries]),
            # The analogy's kernel through search_terms with its term arrays built beforehand
            # (that call's own argument checks included: an upper bound on the kernel alone).
            ("analogy_", {"ours_many": lambda q: packed.most_similar(positive=q[:2], negative=q[2:], topn=TOPN),
                          "kernel_prebuilt_terms": lambda q: search.search_vectors(
                              packed, analogy_terms[tuple(q)], TOPN, 0, words)}, analogies)):
        wall, cpu = interleave(timed_methods, items)
        single.update({prefix + name: value for name, value in wall.items()})
        single_cpu.update({prefix + name: value for name, value in cpu.items()})
    row["single_ms"] = {name: 1e3 * seconds for name, seconds in single.items()}
    row["single_cpu_ms"] = {name: 1e3 * seconds for name, seconds in single_cpu.items()}
    # Overhead a call over the kernel alone, microseconds (the goal: at most 15 for one word).
    row["overhead_us"] = {
        kind: {"most_similar_word": 1e6 * (times["ours_most_similar"] - times["ours_kernel_alone"]),
               "search_one_word": 1e6 * (times["ours_search_word"] - times["ours_kernel_alone"]),
               "analogy_over_prebuilt_terms": 1e6 * (times["analogy_ours_many"] - times["analogy_kernel_prebuilt_terms"])}
        for kind, times in (("cpu", single_cpu), ("wall", single))}

    # ---- batches, interleaved over rounds, per thread count
    row["batch_queries_per_s"] = {}
    for threads in args.threads:
        batch_methods = {"ours_search": lambda: packed.search(batch_codes, TOPN, workers=threads),
                         "ours_search_words": lambda: packed.search(batch_keys, TOPN, workers=threads)}
        if bits == 1 and row_bytes >= 16:
            for name in scalar_sets:
                batch_methods[f"ours_search@{name}"] = with_instruction_set(
                    name, lambda: packed.search(batch_codes, TOPN, workers=threads))
        for name, index_ in indexes.items():
            data = np.ascontiguousarray(faiss_queries[name][query_rows[:args.batch]])
            batch_methods[name] = (lambda index_=index_, data=data:
                                   (faiss.omp_set_num_threads(threads), index_.search(data, TOPN)))
        # usearch's exact search is far slower: it answers the first --usearch-batch queries.
        usearch_queries = np.ascontiguousarray(usearch_data[query_rows[:min(args.batch, args.usearch_batch)]])
        batch_methods["usearch_exact"] = lambda: usearch_search(usearch_data, usearch_queries, TOPN, usearch_metric,
                                                                exact=True, threads=threads)
        sizes = {name: len(batch_codes) for name in batch_methods}
        sizes["usearch_exact"] = len(usearch_queries)
        times = {name: [] for name in batch_methods}
        cpu_times = {name: [] for name in batch_methods}
        for _ in range(args.rounds):
            for name, function in batch_methods.items():
                begin_cpu = time.process_time()
                times[name].append(_timed(function))
                cpu_times[name].append(time.process_time() - begin_cpu)
        row["batch_queries_per_s"][str(threads)] = {name: sizes[name] / float(np.median(values))
                                                    for name, values in times.items()}
        # Queries per CPU-second (all threads' CPU time together): the work, without the waits.
        row.setdefault("batch_queries_per_cpu_s", {})[str(threads)] = {
            name: sizes[name] / float(np.median(values)) for name, values in cpu_times.items()}
    faiss.omp_set_num_threads(1)

    # ---- agreement and recall on the batch queries
    ours_scores, ours_rows = packed.search(batch_codes, TOPN, workers=1)
    checks = {}
    if bits == 1:
        distances, _ = indexes["faiss_binary_flat"].search(batch_codes, TOPN)
        checks["identical_to_faiss_binary_flat"] = same_hamming(ours_scores, distances, dimension)
        # By word: the word itself (distance 0, faiss's first) is left out, as most_similar does.
        word_scores, _ = packed.search(batch_keys, TOPN, workers=1)
        with_self, _ = indexes["faiss_binary_flat"].search(batch_codes, TOPN + 1)
        checks["words_identical_to_faiss_binary_flat"] = same_hamming(word_scores, with_self[:, 1:], dimension)
        for name in scalar_sets if row_bytes >= 16 else []:
            got = with_instruction_set(name, lambda: packed.search(batch_codes, TOPN, workers=1))()
            checks[f"identical_to_{instruction_set()}_with_{name}"] = int(np.sum(np.all(
                (got[0] == ours_scores) & (got[1] == ours_rows), axis=1)))
        matches = usearch_search(codes, batch_codes, TOPN, MetricKind.Hamming, exact=True, threads=1)
        checks["identical_to_usearch"] = same_hamming(ours_scores, np.asarray(matches.distances, dtype=np.int64),
                                                      dimension)
    else:
        batch_unit = np.ascontiguousarray(unit[query_rows[:args.batch]])
        flat_scores, _ = indexes["faiss_flat_ip"].search(batch_unit, TOPN)
        checks["max_abs_score_difference_vs_faiss_flat_ip"] = float(np.max(np.abs(flat_scores - ours_scores)))
        for name in ("faiss_rabitq2", "faiss_sq4"):
            _, found = indexes[name].search(batch_unit, TOPN)
            checks[f"recall10_{name}"] = recall(found, ours_rows)
        checks["faiss_rabitq2_code_bytes"] = int(indexes["faiss_rabitq2"].code_size)
        checks["faiss_sq4_code_bytes"] = int(indexes["faiss_sq4"].code_size)
    checks["queries"] = len(batch_codes)
    single_words = [packed.most_similar(key, topn=TOPN) for key in batch_keys[:100]]
    checks["most_similar_equals_search_words"] = int(sum(
        [packed.index_to_key[r] for r in rows_ if r >= 0] == [word for word, _ in result]
        for result, rows_ in zip(single_words, packed.search(batch_keys[:100], TOPN, workers=1)[1])))
    row["checks"] = checks

    # ---- memory
    path = os.path.join(folder, "vectors.gbits")
    packed.save(path)
    loaded, queried = load_in_subprocess(path)
    os.unlink(path)
    row["rss_bytes_per_word_after_load"] = loaded / words
    row["rss_bytes_per_word_after_query"] = queried / words
    row["vocabulary_bytes_per_word"] = packed.index_to_key.nbytes / words

    # ---- bandwidth bound: bytes the single query must read, over its time
    cache_bandwidth = read_bandwidth(codes.nbytes)
    ours_bytes_per_s = codes.nbytes / (row["single_cpu_ms"]["ours_search"] / 1e3)
    row["bandwidth"] = {
        "codes_bytes": int(codes.nbytes), "cache_read_GBps": cache_bandwidth / 1e9,
        "dram_read_GBps": args.dram_bandwidth / 1e9,
        "ours_single_GBps": ours_bytes_per_s / 1e9,
        "fraction_of_cache_bound": ours_bytes_per_s / cache_bandwidth,
        "fraction_of_dram_bound": ours_bytes_per_s / args.dram_bandwidth,
    }
    first = next(iter(indexes))
    row["bandwidth"][f"{first}_fraction_of_cache_bound"] = (
        codes.nbytes / (row["single_cpu_ms"][first] / 1e3) / cache_bandwidth)
    return row


def print_row(row):
    single = row["single_cpu_ms"]
    print(f"\n== {row['case']} ({row['words']} words, {row['code_bytes_per_word']} B/word), top-{TOPN}")
    print("  single query ms wall: " + ", ".join(f"{name} {value:.3f}" for name, value in row["single_ms"].items()))
    print("  single query ms CPU:  " + ", ".join(f"{name} {value:.3f}" for name, value in single.items()))
    reference = "faiss_binary_flat" if row["bits"] == 1 else "faiss_rabitq2"
    print(f"  single: {reference} / ours_search = {single[reference] / single['ours_search']:.2f}x, "
          f"{reference} / ours_most_similar = {single[reference] / single['ours_most_similar']:.2f}x, "
          f"gensim / ours = {single['gensim_most_similar'] / single['gensim_ours_most_similar']:.1f}x")
    print(f"  faster than {reference} (CPU time, ratio > 1: ours faster): "
          + ", ".join(f"{name} {single[reference] / single[name]:.2f}x" for name in single
                      if name.startswith("ours_") and name != "ours_kernel_alone"))
    print("  overhead over the kernel alone, us (CPU / wall): " + ", ".join(
        f"{name} {row['overhead_us']['cpu'][name]:.1f} / {row['overhead_us']['wall'][name]:.1f}"
        for name in row["overhead_us"]["cpu"]))
    for kind in ("batch_queries_per_s", "batch_queries_per_cpu_s"):
        for threads, rates in row[kind].items():
            for ours in [name for name in rates if name.startswith("ours_")]:
                others = ", ".join(f"{name} {rates[ours] / value:.2f}x" for name, value in rates.items()
                                   if not name.startswith("ours_"))
                print(f"  {kind} batch {row['batch_queries']} @ {threads} thread(s): {ours} {rates[ours]:.0f}; "
                      f"faster than: {others}")
    print(f"  checks: {row['checks']}")
    print(f"  RSS/word after load {row['rss_bytes_per_word_after_load']:.1f} B "
          f"(codes {row['code_bytes_per_word']} B, vocabulary {row['vocabulary_bytes_per_word']:.1f} B); "
          f"bandwidth: ours {row['bandwidth']['ours_single_GBps']:.1f} GB/s = "
          f"{row['bandwidth']['fraction_of_cache_bound']:.0%} of cache, "
          f"{row['bandwidth']['fraction_of_dram_bound']:.0%} of DRAM read bandwidth", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="bits:dimension[:random|glove|word2bits]")
    parser.add_argument("--words", type=int, default=100000, help="vocabulary size")
    parser.add_argument("--queries", type=int, default=100, help="single queries timed per method")
    parser.add_argument("--gensim-queries", type=int, default=10, help="single queries for gensim (slow)")
    parser.add_argument("--batch", type=int, default=1000, help="queries in one batch call")
    parser.add_argument("--usearch-batch", type=int, default=100, help="queries in usearch's batch (slow)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of batch calls (median)")
    parser.add_argument("--word2bits-dir", help="folder of BITS_DIMENSION.kv files for the 'word2bits' source "
                                                "(benchmarks/quality.py --save-dir)")
    parser.add_argument("--glove", default=GLOVE, help="GloVe word2vec text file for the 'glove' source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/search_speed.json")
    parser.add_argument("--measure-load", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_load:
        print(*measure_load(args.measure_load))
        return 0
    try:
        import faiss  # noqa: F401
        import usearch  # noqa: F401
    except ImportError as error:
        print(f"this benchmark needs the bench extra (faiss-cpu, usearch): {error}")
        return 1
    rng = np.random.default_rng(args.seed)
    load_start = os.getloadavg()
    args.dram_bandwidth = read_bandwidth(512 << 20)
    print(f"kernel popcount: {instruction_set()}; DRAM read bandwidth {args.dram_bandwidth / 1e9:.1f} GB/s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    import faiss
    import usearch

    rows = []
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for spec in args.cases:
            row = run_case(spec, args, rng, folder)
            if row is None:
                continue
            rows.append(row)
            print_row(row)
            with open(args.out, "w") as out:  # after every case, so a long run keeps what it measured
                json.dump({"command": " ".join(["python", os.path.relpath(os.path.abspath(__file__))] + sys.argv[1:]),
                           "environment": {name: os.environ.get(name) for name in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")},
                           "faiss": faiss.__version__, "usearch": usearch.__version__, "kernel": instruction_set(),
                           "instruction_sets": list(available_instruction_sets()),
                           "cpu_count": os.cpu_count(), "load_average_start": load_start,
                           "load_average_end": os.getloadavg(),
                           "dram_read_GBps": args.dram_bandwidth / 1e9, "results": rows}, out, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
