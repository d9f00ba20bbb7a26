"""Keep word vectors as bits and search them exactly: QuantizedKeyedVectors in five steps.

With --data-dir (the project's ../shared/data) it thresholds the GloVe 6B 50-d vectors
there (vectors/glove6b50d_100k.txt.gz) to 1 and 2 bits and scores them on WordSim-353
and the Google analogies there; --vectors takes any word2vec text file. With neither it
trains a small 2-bit Word2Bits model on the Lee corpus that gensim ships and scores it on
the WordSim-353 and Google analogy files gensim ships (no download). Then it compares
neighbours with the float vectors, saves the packed file, memory-maps it back and scores it.

    python examples/search_packed_vectors.py [--data-dir ../shared/data] [--vectors PATH]
"""
import argparse
import os
import tempfile

from gensim.models import KeyedVectors
from gensim.models.word2vec import LineSentence
from gensim.test.utils import datapath

from gensim_bits import QuantizedKeyedVectors, Word2Bits, evaluate


def float_vectors(path):
    if path is not None:
        print(f"loading {path}")
        return KeyedVectors.load_word2vec_format(path), "france"
    print("training 2-bit Word2Bits vectors on gensim's Lee corpus (no --data-dir or --vectors)")
    model = Word2Bits(LineSentence(datapath("lee_background.cor")), vector_size=64, bits=2, min_count=3,
                      epochs=10, workers=2, window=5, negative=12, seed=1)
    return model.wv, "government"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help="a local data folder holding vectors/glove6b50d_100k.txt.gz, wordsim/ws353.tsv and "
                             "analogy/google.txt (the project's ../shared/data)")
    parser.add_argument("--vectors", default=None, help="word2vec text file (default: the GloVe file under --data-dir)")
    args = parser.parse_args(argv)
    path = args.vectors or (args.data_dir and os.path.join(args.data_dir, "vectors", "glove6b50d_100k.txt.gz"))
    if args.data_dir is None:  # the files gensim ships
        similarity, analogies = datapath("wordsim353.tsv"), datapath("questions-words.txt")
    else:
        similarity = os.path.join(args.data_dir, "wordsim", "ws353.tsv")
        analogies = os.path.join(args.data_dir, "analogy", "google.txt")
    for needed in (path, similarity, analogies):
        if needed is not None and not os.path.isfile(needed):
            parser.exit(1, f"{parser.prog}: no {needed}\n")

    # 1. Float vectors: pretrained, or trained by Word2Bits (whose values are already on the levels).
    keyed_vectors, word = float_vectors(path)
    float_bytes = keyed_vectors.vectors.nbytes

    for bits in (1, 2):
        # 2. Pack them. quantize=True applies the Word2Bits quantizer to float values;
        #    Word2Bits vectors need no flag (QuantizedKeyedVectors.from_model(model) also works).
        packed = QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=bits, quantize=True)
        print(f"\n{bits}-bit: {packed.nbytes:,} bytes of codes for {len(packed):,} words "
              f"({float_bytes / packed.nbytes:.0f}x smaller than float32)")

        # 3. Search on the bits. Results equal gensim's on the unpacked values.
        print(f"  nearest to {word!r}:", ", ".join(f"{w} {s:.2f}" for w, s in packed.most_similar(word, topn=5)))
        if all(w in packed for w in ("king", "man", "woman")):
            answer = packed.most_similar(positive=["king", "woman"], negative=["man"], topn=3)
            print("  king - man + woman:", ", ".join(f"{w} {s:.2f}" for w, s in answer))

        # 3b. Many queries in one call (faiss-shaped arrays), over every core; row i equals most_similar.
        queries = list(packed.index_to_key[:1000])
        similarities, indices = packed.search(queries, topn=5, workers=None)
        assert [packed.index_to_key[i] for i in indices[0]] == [w for w, _ in packed.most_similar(queries[0], topn=5)]
        print(f"  batch: {len(queries)} queries answered in one search call, shape {indices.shape}")

        # 4. Save atomically, then memory-map: resident memory stays near the size of the codes.
        with tempfile.TemporaryDirectory() as folder:
            file = os.path.join(folder, "vectors.gbits")
            packed.save(file)
            mapped = QuantizedKeyedVectors.load(file, mmap="r")
            assert mapped.most_similar(word, topn=5) == packed.most_similar(word, topn=5)
            print(f"  saved {os.path.getsize(file):,} bytes; memory-mapped copy answers the same")

        # 5. One call scores word similarity and analogies (3CosAdd and 3CosMul).
        results = evaluate(packed, similarity=[similarity], analogies=[analogies], restrict_vocab=30000,
                           verbose=False)
        pairs = results["similarity"][os.path.basename(similarity)]
        google = results["analogies"][os.path.basename(analogies)]["total"]
        print(f"  WordSim-353 Spearman {pairs['spearman']:.3f} ({pairs['coverage']:.0%} of pairs in the vocabulary), "
              f"Google analogies 3CosAdd {google['accuracy_3cosadd']:.1%} / 3CosMul {google['accuracy_3cosmul']:.1%} "
              f"({google['questions']:,} questions)")
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    raise SystemExit(main())
