namespace Sluice.Cli.Commands;

/// <summary>sluicectl backend add|remove|drain|undrain SERVICE ADDRESS:PORT [--weight N]</summary>
public static class BackendCommands
{
    public static async Task<int> Run(CommandLine line)
    {
        var verb = line.Word(1, "a backend command (add, remove, drain, undrain)");
        var service = Uri.EscapeDataString(line.Word(2, "a service name"));
        var backend = line.Word(3, "a backend ADDRESS:PORT");
        var path = $"api/v1/services/{service}/backends/{Uri.EscapeDataString(backend)}";
        int? weight = line.Option("--weight") is { } text
            ? int.TryParse(text, out var w) ? w : throw new CliException(ExitCodes.Usage, $"--weight: \"{text}\" is not a number")
            : null;
        using var api = ApiClient.Connect(line);
        switch (verb)
        {
            case "add":
                await api.Send(HttpMethod.Put, path, new { weight, state = "active" });
                Console.WriteLine($"backend {backend} added to {line.Words[2]}");
                return ExitCodes.Ok;
            case "remove":
                await api.Send(HttpMethod.Delete, path);
                Console.WriteLine($"backend {backend} removed from {line.Words[2]}");
                return ExitCodes.Ok;
            case "drain":
                await api.Send(HttpMethod.Put, path, new { state = "draining" });
                Console.WriteLine($"backend {backend} of {line.Words[2]} draining: no new flows, existing ones kept");
                return ExitCodes.Ok;
            case "undrain":
                await api.Send(HttpMethod.Put, path, new { state = "active" });
                Console.WriteLine($"backend {backend} of {line.Words[2]} active again");
                return ExitCodes.Ok;
            default:
                throw new CliException(ExitCodes.Usage, $"unknown backend command {verb}");
        }
    }
}
