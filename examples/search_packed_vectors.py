"""Keep word vectors as bits and search them exactly: QuantizedKeyedVectors in five steps.

With the shared GloVe vectors (``../shared/data/vectors/glove6b50d_100k.txt.gz``) it
thresholds them to 1 and 2 bits; without them it trains a small 2-bit Word2Bits model on
the Lee corpus that gensim ships. Then it compares neighbours with the float vectors, saves
the packed file, memory-maps it back and scores it.

    python examples/search_packed_vectors.py [--vectors PATH] [--data-dir ../shared/data]
"""
import argparse
import os
import tempfile

from gensim.models import KeyedVectors
from gensim.models.word2vec import LineSentence
from gensim.test.utils import datapath

from gensim_bits import QuantizedKeyedVectors, Word2Bits, evaluate


def float_vectors(path):
    if os.path.isfile(path):
        print(f"loading {path}")
        return KeyedVectors.load_word2vec_format(path), "france"
    print(f"{path} not found: training 2-bit Word2Bits vectors on gensim's Lee corpus instead")
    model = Word2Bits(LineSentence(datapath("lee_background.cor")), vector_size=64, bits=2, min_count=3,
                      epochs=10, workers=2, window=5, negative=12, seed=1)
    return model.wv, "government"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data-dir", help="folder holding vectors/glove6b50d_100k.txt.gz",
                        default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")))
    parser.add_argument("--vectors", default=None, help="word2vec text file; None: the GloVe file under --data-dir")
    args = parser.parse_args()
    path = args.vectors or os.path.join(args.data_dir, "vectors", "glove6b50d_100k.txt.gz")

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
        similarity = os.path.join(args.data_dir, "wordsim", "ws353.tsv")
        analogies = os.path.join(args.data_dir, "analogy", "google.txt")
        if os.path.isfile(similarity) and os.path.isfile(analogies):
            results = evaluate(packed, similarity=[similarity], analogies=[analogies], restrict_vocab=30000,
                               verbose=False)
            google = results["analogies"]["google.txt"]["total"]
            print(f"  ws353 Spearman {results['similarity']['ws353.tsv']['spearman']:.3f}, Google analogies "
                  f"3CosAdd {google['accuracy_3cosadd']:.1%} / 3CosMul {google['accuracy_3cosmul']:.1%}")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    main()
