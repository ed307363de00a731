using System.Globalization;
using System.Text;

namespace Sluice.Bench.Reporting;

/// <summary>A plain SVG bar chart: each case's cost as a multiple of the XDP_TX floor, per service count, with the targets.</summary>
public static class Chart
{
    /// <summary>The trivial XDP_TX program's cost: the median of its runs over the whole part.</summary>
    public static double Floor(PartResult part)
    {
        var floors = part.Measurements.Where(m => m.Case == "xdp_tx floor").Select(m => m.Value).Order().ToList();
        return floors.Count % 2 == 1 ? floors[floors.Count / 2] : (floors[floors.Count / 2 - 1] + floors[floors.Count / 2]) / 2;
    }

    public static string PacketCost(PartResult part)
    {
        var inv = CultureInfo.InvariantCulture;
        var counts = part.Measurements.Select(m => m.Variant).Distinct().ToList();
        var cases = part.Measurements.Select(m => m.Case).Distinct()
            .Where(c => c.StartsWith("established", StringComparison.Ordinal) || c.StartsWith("new flow", StringComparison.Ordinal))
            .Where(c => !c.Contains("net of", StringComparison.Ordinal)).ToList();
        var floor = counts.ToDictionary(c => c, _ => Floor(part));
        double Ratio(string c, string n) => part.Measurements.First(m => m.Case == c && m.Variant == n).Value / floor[n];
        var max = Math.Max(40, cases.SelectMany(c => counts.Select(n => Ratio(c, n))).Max());
        var scale = Math.Log10(max * 1.2);
        const int left = 220, width = 560, row = 16;
        var height = 60 + cases.Count * (counts.Count * row + 12) + 40;
        string[] colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
        double X(double ratio) => left + width * Math.Log10(Math.Max(1, ratio)) / scale;
        var svg = new StringBuilder();
        svg.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{left + width + 40}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.Append(inv, $"<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Per-packet cost, multiple of a trivial XDP_TX program (log scale, lower is better)</text>\n");
        for (var i = 0; i < counts.Count; i++)
        {
            svg.Append(inv, $"<rect x=\"{10 + i * 130}\" y=\"32\" width=\"10\" height=\"10\" fill=\"{colours[i % colours.Length]}\"/><text x=\"{24 + i * 130}\" y=\"41\">{int.Parse(counts[i], inv):N0} services</text>\n");
        }
        var y = 60;
        foreach (var c in cases)
        {
            svg.Append(inv, $"<text x=\"10\" y=\"{y + counts.Count * row / 2 + 4}\">{c}</text>\n");
            for (var i = 0; i < counts.Count; i++)
            {
                var ratio = Ratio(c, counts[i]);
                svg.Append(inv, $"<rect x=\"{left}\" y=\"{y + i * row}\" width=\"{X(ratio) - left:F1}\" height=\"{row - 3}\" fill=\"{colours[i % colours.Length]}\"/>");
                svg.Append(inv, $"<text x=\"{X(ratio) + 4:F1}\" y=\"{y + i * row + row - 5}\" font-size=\"10\">{ratio:F1}x</text>\n");
            }
            var target = c.StartsWith("established", StringComparison.Ordinal) ? 7 : c.Contains("dnat", StringComparison.Ordinal) ? 26 : 35;
            svg.Append(inv, $"<line x1=\"{X(target):F1}\" x2=\"{X(target):F1}\" y1=\"{y - 2}\" y2=\"{y + counts.Count * row}\" stroke=\"black\" stroke-dasharray=\"4,2\"/>");
            svg.Append(inv, $"<text x=\"{X(target) - 2:F1}\" y=\"{y - 3}\" font-size=\"9\" text-anchor=\"end\">target {target}x</text>\n");
            y += counts.Count * row + 12;
        }
        foreach (var tick in new[] { 1, 2, 5, 10, 20, 50, 100, 200, 500 }.Where(t => t <= max * 1.2))
        {
            svg.Append(inv, $"<line x1=\"{X(tick):F1}\" x2=\"{X(tick):F1}\" y1=\"{y}\" y2=\"{y + 5}\" stroke=\"black\"/><text x=\"{X(tick):F1}\" y=\"{y + 17}\" text-anchor=\"middle\" font-size=\"10\">{tick}x</text>\n");
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }
}
