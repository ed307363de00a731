namespace Sluice.Datapath.Tool;

/// <summary>--name value pairs and --flags; unknown options are errors, never ignored.</summary>
public sealed class Arguments
{
    private readonly Dictionary<string, string> values = [];
    private readonly HashSet<string> flags = [];

    public Arguments(IEnumerable<string> args, IReadOnlySet<string> valueOptions, IReadOnlySet<string> flagOptions)
    {
        using var e = args.GetEnumerator();
        while (e.MoveNext())
        {
            var name = e.Current;
            if (flagOptions.Contains(name))
            {
                flags.Add(name);
            }
            else if (valueOptions.Contains(name))
            {
                values[name] = e.MoveNext() ? e.Current : throw new ToolException($"{name} needs a value");
            }
            else
            {
                throw new ToolException($"unknown option {name}");
            }
        }
    }

    public string Required(string name) => values.TryGetValue(name, out var value) ? value : throw new ToolException($"{name} is required");

    public string? Optional(string name) => values.GetValueOrDefault(name);

    public bool Flag(string name) => flags.Contains(name);

    public uint UInt(string name, uint fallback) =>
        values.TryGetValue(name, out var text) ? (uint.TryParse(text, out var n) ? n : throw new ToolException($"{name}: \"{text}\" is not a number")) : fallback;

    public IReadOnlyList<string> List(string name) =>
        Required(name).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
