using System.Text;

namespace Sluice.Bench.Reporting;

/// <summary>
/// Figures of an earlier datapath and of this one, measured alternately in one run
/// (bench/compare.sh): per case, the median over the rounds of each side.
/// </summary>
public static class Comparison
{
    /// <summary>Merges the rounds' part results into one "comparison" part: variant "before" and "now" per case.</summary>
    public static PartResult Merge(string label, IReadOnlyList<string> baseline, IReadOnlyList<string> current)
    {
        var measurements = new List<Measurement>();
        var before = Load(baseline);
        var now = Load(current);
        foreach (var key in now.Keys.Where(before.ContainsKey))
        {
            var (caseName, unit) = key;
            measurements.Add(new("comparison", caseName, $"before ({label})", Median(before[key]), unit));
            measurements.Add(new("comparison", caseName, "now", Median(now[key]), unit));
        }
        foreach (var key in now.Keys.Where(k => !before.ContainsKey(k)))
        {
            measurements.Add(new("comparison", key.Case, "now", Median(now[key]), key.Unit));
        }
        return new PartResult("comparison", DateTimeOffset.UtcNow, false, measurements,
        [
            $"before: the datapath and library of {label}, built from that commit; now: this tree. Run alternately (before, now, before, now) in one session; medians of the rounds",
            "per-packet cost with the same 262,144-entry connection tables on both sides (ABI v2's own size): before, a cold run opens a million connections into its full, evicting LRU tables; now, 249,036 connections into tables that fill to 95% (they never evict; part 1 measures a million into 1,048,576-entry tables)",
        ]);
    }

    public static void Write(StringBuilder md, PartResult part)
    {
        md.AppendLine("## 0. Against the previous datapath").AppendLine();
        foreach (var note in part.Notes) md.AppendLine($"- {note}");
        md.AppendLine();
        var beforeLabel = part.Measurements.Select(m => m.Variant).FirstOrDefault(v => v.StartsWith("before", StringComparison.Ordinal)) ?? "before";
        md.AppendLine($"| case | {beforeLabel} | now | now / before |").AppendLine("|---|---|---|---|");
        foreach (var name in part.Measurements.Select(m => m.Case).Distinct())
        {
            var was = part.Measurements.FirstOrDefault(m => m.Case == name && m.Variant == beforeLabel);
            var now = part.Measurements.First(m => m.Case == name && m.Variant == "now");
            md.AppendLine(was is null
                ? $"| {name} | – | {now.Value:F2} {now.Unit} | new case |"
                : $"| {name} | {was.Value:F2} {was.Unit} | {now.Value:F2} {now.Unit} | {now.Value / was.Value:F2} |");
        }
        md.AppendLine();
    }

    /// <summary>(part: case [variant]) -> every round's value, from packet-cost and packet-rate results.</summary>
    private static Dictionary<(string Case, string Unit), List<double>> Load(IEnumerable<string> directories)
    {
        var values = new Dictionary<(string, string), List<double>>();
        foreach (var directory in directories)
        {
            foreach (var part in new[] { "packet-cost", "packet-rate" }.Select(p => PartResult.Load(directory, p)).Where(p => p is not null))
            {
                foreach (var m in part!.Measurements.Where(m => m.Part == "packet-rate" ? m.Case.StartsWith("Sluice", StringComparison.Ordinal) || m.Case.StartsWith("forward-only", StringComparison.Ordinal) : true))
                {
                    var name = m.Part == "packet-cost" ? $"{m.Case}, {int.Parse(m.Variant):N0} services" : $"rate: {m.Case}, {m.Variant}";
                    if (!values.TryGetValue((name, m.Unit), out var list))
                    {
                        values[(name, m.Unit)] = list = [];
                    }
                    list.Add(m.Value);
                }
            }
        }
        return values;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
