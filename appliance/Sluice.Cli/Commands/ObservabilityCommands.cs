using System.Text.Json.Nodes;

namespace Sluice.Cli.Commands;

/// <summary>sluicectl flows | events: live flows from the flow table, recent events.</summary>
public static class ObservabilityCommands
{
    public static async Task<int> Flows(CommandLine line)
    {
        using var api = ApiClient.Connect(line);
        var (_, body) = await api.Send(HttpMethod.Get, "api/v1/flows" + Query(line, "--service", "--backend", "--limit"));
        if (line.Json)
        {
            Console.WriteLine(body!.ToJsonString(Output.Indented));
            return ExitCodes.Ok;
        }
        var flows = body!["flows"]!.AsArray();
        Table.Print(["CLIENT", "VIP", "PROTO", "SERVICE", "BACKEND", "SNAT", "AGE", "IDLE", "STATE"],
            flows.Select(f => (IReadOnlyList<string>)
            [
                f!["client"]!.ToString(), f["vip"]!.ToString(), f["protocol"]!.ToString(), f["service"]!.ToString(), f["backend"]!.ToString(),
                f["snatAddress"] is { } address ? $"{address}:{f["snatPort"]}" : "-",
                $"{f["ageSeconds"]}s", $"{f["idleSeconds"]}s", f["state"]!.ToString(),
            ]));
        Console.WriteLine($"{flows.Count} of {body["total"]} live flow(s)");
        return ExitCodes.Ok;
    }

    public static async Task<int> Events(CommandLine line)
    {
        using var api = ApiClient.Connect(line);
        var (_, body) = await api.Send(HttpMethod.Get, "api/v1/events" + Query(line, "--kind", "--limit"));
        if (line.Json)
        {
            Console.WriteLine(body!.ToJsonString(Output.Indented));
            return ExitCodes.Ok;
        }
        Table.Print(["TIME", "KIND", "EVENT"],
            body!["events"]!.AsArray().Select(e => (IReadOnlyList<string>)
            [
                DateTimeOffset.Parse(e!["time"]!.ToString(), System.Globalization.CultureInfo.InvariantCulture).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture),
                e["kind"]!.ToString(), e["message"]!.ToString(),
            ]));
        return ExitCodes.Ok;
    }

    private static string Query(CommandLine line, params string[] options)
    {
        var parts = options.Where(o => line.Option(o) is not null).Select(o => $"{o[2..]}={Uri.EscapeDataString(line.Option(o)!)}").ToList();
        return parts.Count == 0 ? "" : "?" + string.Join("&", parts);
    }
}
