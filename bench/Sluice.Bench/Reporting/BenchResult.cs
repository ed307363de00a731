using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sluice.Bench.Reporting;

/// <summary>One measured figure: which part, which case, its value and unit, and what backs it.</summary>
public sealed record Measurement(string Part, string Case, string Variant, double Value, string Unit, string? Note = null);

/// <summary>Raw results of one part, written as JSON next to RESULTS.md.</summary>
public sealed record PartResult(string Part, DateTimeOffset Started, bool Quick, IReadOnlyList<Measurement> Measurements, IReadOnlyList<string> Notes)
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, $"{Part}.json"), JsonSerializer.Serialize(this, Json));
    }

    public static PartResult? Load(string directory, string part)
    {
        var path = Path.Combine(directory, $"{part}.json");
        return File.Exists(path) ? JsonSerializer.Deserialize<PartResult>(File.ReadAllText(path), Json) : null;
    }
}
