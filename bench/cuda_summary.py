"""cuda_summary.py: the last tables of `make bench-cuda` (bench/cuda_vs_torch.sh),
read from the machine-readable lines the run wrote to one file:

  # result CASE MODE TOKENS_PER_S X    X: TFLOP/s (spiral) or peak GB (PyTorch)
  # windows CASE MODE SLOWEST MEDIAN FASTEST
  # record CASE DTYPE WHOLE COMPUTE BOUND   GPU over CPU sequences/s ratios
  cuBLAS ... bf16 N TFLOP/s ...            the run's bf16 ceiling

and then the GPU engine's performance goals, each with the figure of this
run and whether it is met. A goal against PyTorch's compiled step is held
against both of its compiled modes (default, and CUDA graphs): met only when
spiral clears the faster one.

usage: python3 bench/cuda_summary.py RESULTS
"""
import math
import re
import sys

MODES = ["spiral-fp32", "spiral-tf32", "spiral-bf16", "torch-eager", "torch-compile",
         "torch-graphs"]
NAN = float("nan")


def read(path):
    """The rows, windows, recordings and ceiling of a results file."""
    rows, record, windows, ceiling = {}, [], [], NAN
    for line in open(path):
        if line.startswith("# windows "):
            windows.append(line.split()[2:7])
        elif line.startswith("# record "):
            f = line.split()
            record.append((f[2], f[3], float(f[4]), float(f[5]), float(f[6])))
        elif line.startswith("# result "):
            f = line.split()
            rows[(f[2], f[3])] = (float(f[4]), float(f[5]) if len(f) > 5 else NAN)
        elif line.startswith("cuBLAS"):
            m = re.search(r"bf16 ([0-9.]+) TFLOP/s", line)
            if m:
                ceiling = float(m.group(1))
    return rows, record, windows, ceiling


def tokens(rows, case, mode):
    return rows.get((case, mode), (NAN, NAN))[0]


def mfu(rows, case, ceiling):
    """spiral bf16's model TFLOP/s at case over the bf16 ceiling, in percent."""
    return 100 * rows.get((case, "spiral-bf16"), (NAN, NAN))[1] / ceiling


def throughput_table(rows, windows, ceiling):
    print("%-6s" % "case" + "".join("%14s" % m for m in MODES) +
          "%12s%14s%13s%10s" % ("bf16/eager", "bf16/compile", "bf16/graphs", "bf16 MFU"))
    for case in ("d256", "d768"):
        v = [rows.get((case, m), (NAN, NAN)) for m in MODES]
        print("%-6s" % case + "".join("%14.0f" % x[0] for x in v) +
              "%12.2f%14.2f%13.2f%9.0f%%" % (v[2][0] / v[3][0], v[2][0] / v[4][0],
                                            v[2][0] / v[5][0], mfu(rows, case, ceiling)))
    print("(tokens/s; MFU: spiral bf16's model TFLOP/s over the cuBLAS bf16 ceiling %.0f TFLOP/s "
          "of this run)" % ceiling)
    for case, mode, slow, median, fast in windows:
        bf16 = tokens(rows, case, "spiral-bf16")
        print("%s %s: five windows %s / %s / %s tokens/s (slowest / median / fastest); spiral bf16 "
              "at %.2fx its median, %.2fx its fastest" % (case, mode, slow, median, fast,
                                                        bf16 / float(median), bf16 / float(fast)))


def looped_ratio(rows):
    """spiral's TFLOP/s over looped's at d768 in bf16 (nan when either is missing)."""
    spiral, looped = rows.get(("d768", "spiral-bf16")), rows.get(("d768-looped", "spiral-bf16"))
    if not spiral or not looped:
        return NAN, NAN, NAN
    return spiral[1], looped[1], spiral[1] / looped[1]


def verdict(value, goal):
    if math.isnan(value):
        return "not measured"
    return "met" if value >= goal else "NOT MET"


def goals_table(rows, record, ceiling):
    """One line a goal: what it asks, this run's figure, met or not."""
    print("%-46s%-34s%s" % ("goal", "this run", "verdict"))
    for case, goal in (("d768", 1.3), ("d256", 3.0)):
        bf16 = tokens(rows, case, "spiral-bf16")
        compiled, graphs = tokens(rows, case, "torch-compile"), tokens(rows, case, "torch-graphs")
        weakest = min(bf16 / compiled, bf16 / graphs)
        print("%-46s%-34s%s" % ("%s: spiral bf16 >= %.1fx compiled PyTorch" % (case, goal),
                                "%.2fx default, %.2fx CUDA graphs" % (bf16 / compiled,
                                                                     bf16 / graphs),
                                verdict(weakest, goal)))
    d768_mfu = mfu(rows, "d768", ceiling)
    print("%-46s%-34s%s" % ("d768: MFU >= 45%", "%.0f%%" % d768_mfu, verdict(d768_mfu, 45)))
    _, _, ratio = looped_ratio(rows)
    print("%-46s%-34s%s" % ("d768: per FLOP within 10% of looped",
                            "%.2f of looped's TFLOP/s" % ratio, verdict(ratio, 0.9)))
    whole = [r[2] for r in record]
    low = min(whole, default=NAN)
    figure = "%.1fx to %.1fx" % (low, max(whole)) if whole else "-"
    print("%-46s%-34s%s" % ("recording >= 50x the CPU engine's sequences/s", figure,
                            verdict(low, 50)))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 bench/cuda_summary.py RESULTS")
    rows, record, windows, ceiling = read(sys.argv[1])
    throughput_table(rows, windows, ceiling)
    spiral, looped, ratio = looped_ratio(rows)
    if not math.isnan(ratio):
        print("efficiency per FLOP at d768, bf16: spiral %.1f TFLOP/s, looped (g=1,1,1,1) %.1f "
              "TFLOP/s: spiral at %.2f of looped's" % (spiral, looped, ratio))
    for case, dtype, whole, compute, bound in record:
        print("recording %s %s, GPU over CPU engine: %.1fx whole (store included; %.1fx at most "
              "with this store), %.1fx forward passes and attention statistics"
              % (case, dtype, whole, bound, compute))
    print()
    goals_table(rows, record, ceiling)


if __name__ == "__main__":
    main()
