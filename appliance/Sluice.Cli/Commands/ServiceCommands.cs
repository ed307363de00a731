using System.Text.Json.Nodes;
using Sluice.Model.Configuration;

namespace Sluice.Cli.Commands;

/// <summary>sluicectl service list | get NAME | apply -f FILE | delete NAME</summary>
public static class ServiceCommands
{
    public static async Task<int> Run(CommandLine line)
    {
        var verb = line.Word(1, "a service command (list, get, apply, delete)");
        using var api = ApiClient.Connect(line);
        switch (verb)
        {
            case "list":
            {
                var (_, body) = await api.Send(HttpMethod.Get, "api/v1/services");
                if (line.Json) Console.WriteLine(body!.ToJsonString(Output.Indented));
                else PrintTable(body!["services"]!.AsArray());
                return ExitCodes.Ok;
            }
            case "get":
            {
                var (_, body) = await api.Send(HttpMethod.Get, $"api/v1/services/{Uri.EscapeDataString(line.Word(2, "a service name"))}");
                if (line.Json) Console.WriteLine(body!.ToJsonString(Output.Indented));
                else PrintOne(body!);
                return ExitCodes.Ok;
            }
            case "apply":
            {
                var file = line.Option("--file") ?? throw new CliException(ExitCodes.Usage, "apply needs -f FILE");
                var (services, errors) = ConfigLoader.ParseServices(File.ReadAllText(file));
                if (services is null)
                {
                    throw new CliException(ExitCodes.Usage, $"{file} is invalid:\n  " + string.Join("\n  ", errors));
                }
                foreach (var (name, definition) in services)
                {
                    var (status, _) = await api.Send(HttpMethod.Put, $"api/v1/services/{Uri.EscapeDataString(name)}", definition);
                    Console.WriteLine($"service {name} {((int)status == 201 ? "created" : "configured")}");
                }
                return ExitCodes.Ok;
            }
            case "delete":
            {
                var name = line.Word(2, "a service name");
                await api.Send(HttpMethod.Delete, $"api/v1/services/{Uri.EscapeDataString(name)}");
                Console.WriteLine($"service {name} deleted");
                return ExitCodes.Ok;
            }
            default:
                throw new CliException(ExitCodes.Usage, $"unknown service command {verb}");
        }
    }

    public static void PrintTable(JsonArray services) => Table.Print(
        ["NAME", "OWNER", "ENDPOINT", "MODE", "BACKENDS", "PACKETS", "NEW FLOWS"],
        services.Select(s =>
        {
            var spec = s!["spec"]!;
            var status = s["status"]!;
            var backends = status["backends"]!.AsArray();
            var up = backends.Count(b => b!["health"]!.GetValue<string>() == "up" && b["state"]!.GetValue<string>() == "active");
            return (IReadOnlyList<string>)
            [
                s["name"]!.ToString(), s["owner"]!.ToString(), $"{spec["vip"]}:{spec["port"]}/{spec["protocol"]}", spec["mode"]!.ToString(),
                $"{up}/{backends.Count}", status["traffic"]!["packets"]!.ToString(), status["traffic"]!["newFlows"]!.ToString(),
            ];
        }));

    private static void PrintOne(JsonNode service)
    {
        var spec = service["spec"]!;
        Console.WriteLine($"{service["name"]} ({service["owner"]})  {spec["vip"]}:{spec["port"]}/{spec["protocol"]}  {spec["mode"]}  affinity {spec["affinity"]}  etag {service["etag"]}");
        Table.Print(["BACKEND", "WEIGHT", "STATE", "HEALTH", "LIVE FLOWS", "PACKETS", "NEW FLOWS", "REPLIES"],
            service["status"]!["backends"]!.AsArray().Select(b => (IReadOnlyList<string>)
            [
                $"{b!["address"]}:{b["port"]}", b["weight"]!.ToString(), b["state"]!.ToString(),
                b["health"]!.ToString() + (b["healthDetail"] is { } why ? $" ({why})" : ""), b["liveFlows"]!.ToString(),
                b["traffic"]!["packets"]!.ToString(), b["traffic"]!["newFlows"]!.ToString(), b["traffic"]!["replyPackets"]!.ToString(),
            ]));
    }
}
