namespace Sluice.Cli;

/// <summary>Global options, then the command's words and its own options.</summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string> options = [];

    public CommandLine(string[] args)
    {
        var words = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg is "-o") arg = "--output";
            if (arg is "-f") arg = "--file";
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                if (!Known.Contains(arg)) throw new CliException(ExitCodes.Usage, $"unknown option {arg}");
                if (i + 1 >= args.Length) throw new CliException(ExitCodes.Usage, $"{arg} needs a value");
                options[arg] = args[++i];
            }
            else
            {
                words.Add(arg);
            }
        }
        Words = words;
        if (Output is not ("table" or "json")) throw new CliException(ExitCodes.Usage, "--output must be table or json");
    }

    private static readonly HashSet<string> Known = ["--config", "--api", "--token-file", "--output", "--file", "--weight", "--service", "--backend", "--limit", "--kind"];

    public IReadOnlyList<string> Words { get; }

    public string Output => options.GetValueOrDefault("--output", "table");

    public bool Json => Output == "json";

    public string? Option(string name) => options.GetValueOrDefault(name);

    public string Word(int index, string what) =>
        index < Words.Count ? Words[index] : throw new CliException(ExitCodes.Usage, $"missing {what}");
}
