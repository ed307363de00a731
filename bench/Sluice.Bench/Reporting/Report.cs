using System.Globalization;
using System.Text;

namespace Sluice.Bench.Reporting;

/// <summary>
/// Turns the parts' raw JSON into bench/RESULTS.md (figures, ratios against the targets,
/// machine, kernel, date) and bench/results.svg (per-packet cost as multiples of the floor).
/// </summary>
public static class Report
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static void Write(string resultsDirectory, Action<string> log)
    {
        var benchDirectory = Path.GetDirectoryName(resultsDirectory.TrimEnd('/'))!;
        var parts = new[] { "packet-cost", "packet-rate", "connections", "control-plane", "maglev", "sweep" }
            .Select(p => PartResult.Load(resultsDirectory, p)).Where(p => p is not null).Select(p => p!).ToList();
        var md = new StringBuilder();
        var quick = parts.Any(p => p.Quick);
        md.AppendLine("# Sluice benchmark results").AppendLine();
        md.AppendLine(quick
            ? "**Quick mode**: every part ran briefly to prove the suite works. These figures are not measurements."
            : "Measured side by side in one run on one machine. Compare ratios, not absolute times, across machines.");
        md.AppendLine().AppendLine("| | |").AppendLine("|---|---|");
        md.AppendLine($"| date | {parts.Select(p => p.Started).DefaultIfEmpty(DateTimeOffset.UtcNow).Min():yyyy-MM-dd HH:mm} UTC |");
        md.AppendLine($"| machine | {Cpu()}, {Environment.ProcessorCount} vCPU, {MemoryGiB():F0} GiB |");
        md.AppendLine($"| kernel | {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()} |");
        md.AppendLine($"| raw results | `bench/results/*.json` |").AppendLine();

        if (PartResult.Load(resultsDirectory, "comparison") is { } comparison)
        {
            Comparison.Write(md, comparison);
        }
        if (parts.FirstOrDefault(p => p.Part == "packet-cost") is { } cost)
        {
            PacketCost(md, cost);
            File.WriteAllText(Path.Combine(benchDirectory, "results.svg"), Chart.PacketCost(cost));
            md.AppendLine("![Per-packet cost as a multiple of the trivial XDP_TX program](results.svg)").AppendLine();
        }
        foreach (var part in parts.Where(p => p.Part != "packet-cost"))
        {
            Generic(md, part);
        }
        if (parts.Count < 6) md.AppendLine("## Not measured in this run").AppendLine();
        foreach (var missing in new[] { ("packet-rate", "2. packet rate"), ("connections", "3. TCP connections per second and latency with ab") }
            .Where(m => parts.All(p => p.Part != m.Item1)))
        {
            md.AppendLine($"- {missing.Item2}: not part of this run.");
        }
        md.AppendLine();
        File.WriteAllText(Path.Combine(benchDirectory, "RESULTS.md"), md.ToString());
        log($"report: {Path.Combine(benchDirectory, "RESULTS.md")}");
    }

    private static void PacketCost(StringBuilder md, PartResult part)
    {
        md.AppendLine("## 1. Per-packet cost (BPF_PROG_TEST_RUN)").AppendLine();
        foreach (var note in part.Notes) md.AppendLine($"- {note}");
        md.AppendLine($"- Ratios are to the floor's median over the whole run ({Chart.Floor(part):F2} ns): the floor does not depend on the services programmed, and one noisy floor run must not flatter or punish a column.");
        md.AppendLine("- Sluice runs behind a wrapper that restores the frame's headers each iteration (the kernel reuses one buffer); " +
            "\"raw\" includes the wrapper, as Katran's published 11x/26x do; \"net\" subtracts the wrapper's measured cost. " +
            "\"hot\" new flows: the same SYN each iteration with the previous flow and NAT entry deleted first (Katran's method; the deletes are included); " +
            "\"cold\" new flows: a million distinct clients opening connections, tables emptied before each run and filling to 95% (nothing is evicted: a full table refuses, timed as \"new flow refused, table full\").").AppendLine();
        var counts = part.Measurements.Select(m => m.Variant).Distinct().ToList();
        md.AppendLine("| case | " + string.Join(" | ", counts.Select(c => $"{int.Parse(c, Invariant):N0} services")) + " |");
        md.AppendLine("|---|" + string.Concat(counts.Select(_ => "---|")));
        var floor = counts.ToDictionary(c => c, _ => Chart.Floor(part));
        foreach (var name in part.Measurements.Select(m => m.Case).Distinct())
        {
            md.Append($"| {name} |");
            foreach (var count in counts)
            {
                var m = part.Measurements.First(x => x.Variant == count && x.Case == name);
                md.Append(name == "xdp_tx floor" ? $" {m.Value:F0} ns |" : $" {m.Value:F0} ns ({m.Value / floor[count]:F1}x) |");
            }
            md.AppendLine();
        }
        md.AppendLine();
        md.AppendLine("| target | figure (raw, worst over service counts) | met |").AppendLine("|---|---|---|");
        void Target(string label, string prefix, double limit)
        {
            var worst = counts.Max(c => part.Measurements.Where(m => m.Variant == c && m.Case.StartsWith(prefix, StringComparison.Ordinal) && !m.Case.Contains("net", StringComparison.Ordinal))
                .Select(m => m.Value / floor[c]).DefaultIfEmpty(double.NaN).Max());
            md.AppendLine($"| {label} ≤ {limit}x | {worst:F1}x | {(worst <= limit ? "yes" : "**no**")} |");
        }
        Target("established flow", "established", 7);
        Target("new flow, dnat (hot)", "new flow dnat, hot", 26);
        Target("new flow, fullnat (hot)", "new flow fullnat, hot", 35);
        md.AppendLine();
    }

    private static void Generic(StringBuilder md, PartResult part)
    {
        var title = part.Part switch
        {
            "control-plane" => "4. Control plane: request to programmed datapath",
            "maglev" => "5. Maglev table build (BenchmarkDotNet)",
            "packet-rate" => "2. Packet rate",
            "sweep" => "6. Connection sweeper",
            "connections" => "3. Connections",
            _ => part.Part,
        };
        md.AppendLine($"## {title}").AppendLine();
        foreach (var note in part.Notes) md.AppendLine($"- {note}");
        md.AppendLine();
        var variants = part.Measurements.Select(m => m.Variant).Distinct().ToList();
        var header = part.Part switch { "maglev" => "backends ", "control-plane" => "services ", _ => "" };
        md.AppendLine("| case | " + string.Join(" | ", variants.Select(v => $"{header}{v}")) + " |");
        md.AppendLine("|---|" + string.Concat(variants.Select(_ => "---|")));
        foreach (var name in part.Measurements.Select(m => m.Case).Distinct())
        {
            md.Append($"| {name} |");
            foreach (var variant in variants)
            {
                var m = part.Measurements.FirstOrDefault(x => x.Variant == variant && x.Case == name);
                md.Append(m is null ? " – |" : $" {Format(m)} |");
            }
            md.AppendLine();
        }
        md.AppendLine();
        if (part.Part == "control-plane")
        {
            var reload = part.Measurements.Where(m => m.Case.StartsWith("sluiced: config reload", StringComparison.Ordinal)).MaxBy(m => int.Parse(m.Variant, Invariant));
            var programming = part.Measurements.Where(m => m.Case.StartsWith("sluiced: programming", StringComparison.Ordinal)).MaxBy(m => int.Parse(m.Variant, Invariant));
            var p99 = part.Measurements.Where(m => m.Case.EndsWith("p99", StringComparison.Ordinal)).MaxBy(m => int.Parse(m.Variant, Invariant));
            var rss = part.Measurements.Where(m => m.Case.Contains("resident", StringComparison.Ordinal)).MaxBy(m => int.Parse(m.Variant, Invariant));
            var iptables = part.Measurements.Where(m => m.Case.StartsWith("iptables", StringComparison.Ordinal)).MaxBy(m => int.Parse(m.Variant, Invariant));
            md.AppendLine("| target | figure | met |").AppendLine("|---|---|---|");
            if (reload is not null) md.AppendLine($"| {int.Parse(reload.Variant, Invariant):N0} services x 10 backends programmed ≤ 1 s | reload {reload.Value:F3} s, of which the maps {programming?.Value:F3} s (iptables-restore: {iptables?.Value:F3} s) | {(reload.Value <= 1 ? "yes" : programming?.Value <= 1 ? "maps yes, with YAML **no**" : "**no**")} |");
            if (p99 is not null) md.AppendLine($"| one change at {int.Parse(p99.Variant, Invariant):N0} services, p99 ≤ 5 ms | {p99.Value:F2} ms | {(p99.Value <= 5 ? "yes" : "**no**")} |");
            if (rss is not null) md.AppendLine($"| daemon memory with {int.Parse(rss.Variant, Invariant):N0} services ≤ 200 MB | {rss.Value:F0} MiB | {(rss.Value <= 200 ? "yes" : "**no**")} |");
            md.AppendLine();
        }
        if (part.Part == "packet-rate")
        {
            double Rate(string prefix, string variant) => part.Measurements.FirstOrDefault(m => m.Case.StartsWith(prefix, StringComparison.Ordinal) && m.Variant == variant)?.Value ?? double.NaN;
            var sluiceOne = Rate("Sluice", "one flow");
            var sluiceNew = Rate("Sluice", "new flow per packet");
            var iptablesOne = Rate("iptables DNAT, 0 ", "one flow");
            var iptablesMostNew = part.Measurements.Where(m => m.Case.StartsWith("iptables", StringComparison.Ordinal) && m.Variant == "new flow per packet").LastOrDefault();
            var floor = Rate("forward-only", "one flow");
            var nftNew = Rate("nftables DNAT", "new flow per packet");
            md.AppendLine("| target | figure | met |").AppendLine("|---|---|---|");
            md.AppendLine($"| one flow ≥ 4x iptables DNAT | {sluiceOne / iptablesOne:F1}x | {(sluiceOne / iptablesOne >= 4 ? "yes" : "**no**")} |");
            md.AppendLine($"| one flow ≥ 85% of forward-only XDP | {sluiceOne / floor:P0} | {(sluiceOne / floor >= 0.85 ? "yes" : "**no**")} |");
            md.AppendLine($"| new flows ≥ 3x nftables | {sluiceNew / nftNew:F1}x | {(sluiceNew / nftNew >= 3 ? "yes" : "**no**")} |");
            if (iptablesMostNew is not null)
            {
                md.AppendLine($"| new flows ≥ 100x iptables ({iptablesMostNew.Case}) | {sluiceNew / iptablesMostNew.Value:F1}x | {(sluiceNew / iptablesMostNew.Value >= 100 ? "yes" : "**no**")} |");
            }
            var many = part.Measurements.FirstOrDefault(m => m.Case.StartsWith("Sluice (XDP, dnat), ", StringComparison.Ordinal) && m.Variant == "new flow per packet");
            if (many is not null)
            {
                var change = many.Value / sluiceNew - 1;
                md.AppendLine($"| new flows flat within 15% from 1 to {many.Case["Sluice (XDP, dnat), ".Length..]} | {change:+0%;-0%} | {(Math.Abs(change) <= 0.15 ? "yes" : "**no**")} |");
            }
            md.AppendLine();
        }
        if (part.Part == "connections")
        {
            double Rate(string name) => part.Measurements.FirstOrDefault(m => m.Case == name && m.Variant == "connections/s")?.Value ?? double.NaN;
            var direct = Rate("direct (kernel forwarding, no balancer)");
            var haproxy = Rate("HAProxy TCP mode");
            md.AppendLine("| target | figure | met |").AppendLine("|---|---|---|");
            foreach (var sluice in new[] { "Sluice fullnat (XDP)", "Sluice dnat (XDP)" })
            {
                md.AppendLine($"| {sluice}: ≥ 95% of direct | {Rate(sluice) / direct:P0} | {(Rate(sluice) / direct >= 0.95 ? "yes" : "**no**")} |");
                md.AppendLine($"| {sluice}: ≥ 2.5x HAProxy | {Rate(sluice) / haproxy:F2}x | {(Rate(sluice) / haproxy >= 2.5 ? "yes" : "**no**")} |");
            }
            md.AppendLine();
        }
        if (part.Part == "maglev" && part.Measurements.FirstOrDefault(m => m.Case == "build M=65537" && m.Variant == "1000") is { } big)
        {
            md.AppendLine("| target | figure | met |").AppendLine("|---|---|---|");
            md.AppendLine($"| M = 65537, 1,000 backends ≤ 2 ms | {big.Value:F2} ms | {(big.Value <= 2 ? "yes" : "**no**")} |").AppendLine();
        }
    }

    private static string Format(Measurement m) => m.Unit switch
    {
        "s" => $"{m.Value:F3} s",
        "ms" => $"{m.Value:F2} ms",
        "/s" => $"{m.Value:N0}/s",
        "µs" => $"{m.Value:F0} µs",
        "Mpps" => $"{m.Value:F2} Mpps",
        "MiB" => $"{m.Value:F0} MiB",
        _ => $"{m.Value:F1} {m.Unit}",
    };

    private static string Cpu() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";

    private static double MemoryGiB() =>
        long.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], Invariant) / 1048576.0;
}
