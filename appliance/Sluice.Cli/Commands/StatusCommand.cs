using System.Text.Json.Nodes;

namespace Sluice.Cli.Commands;

/// <summary>sluicectl status: one screen on what the appliance is doing.</summary>
public static class StatusCommand
{
    public static async Task<int> Run(CommandLine line)
    {
        using var api = ApiClient.Connect(line);
        var (_, status) = await api.Send(HttpMethod.Get, "api/v1/status");
        var (_, list) = await api.Send(HttpMethod.Get, "api/v1/services");
        if (line.Json)
        {
            Console.WriteLine(new JsonObject { ["status"] = status!.DeepClone(), ["services"] = list!["services"]!.DeepClone() }.ToJsonString(Output.Indented));
            return ExitCodes.Ok;
        }
        var datapath = status!["datapath"]!;
        var healthy = datapath["healthy"]!.GetValue<bool>();
        Console.WriteLine($"Datapath:   {(healthy ? "OK" : "DEGRADED: " + datapath["detail"])}   program {datapath["programId"]}   pins {datapath["pinPath"]}");
        foreach (var item in datapath["interfaces"]!.AsArray())
        {
            var ours = item!["ours"]!.GetValue<bool>() ? "attached" : $"NOT ATTACHED (program {item["attachedProgramId"]})";
            Console.WriteLine($"            {item["name"],-12} {item["mode"],-8} {ours}");
        }
        foreach (var vlan in datapath["vlans"]?.AsArray() ?? [])
        {
            Console.WriteLine($"            {vlan!["name"],-12} VLAN {vlan["vlanId"]} on {vlan["parent"]}");
        }
        var services = list!["services"]!.AsArray();
        var backends = services.SelectMany(s => s!["status"]!["backends"]!.AsArray()).ToList();
        var up = backends.Count(b => b!["health"]!.GetValue<string>() == "up");
        var draining = backends.Count(b => b!["state"]!.GetValue<string>() == "draining");
        Console.WriteLine($"Services:   {services.Count}   backends {backends.Count} ({up} up, {backends.Count - up} down, {draining} draining)   flows {status["counts"]!["flows"]}");
        var nextHops = status["nextHops"]!;
        var unresolved = nextHops["unresolved"]!.GetValue<int>();
        Console.WriteLine($"Next hops:  " + (unresolved == 0 ? $"all {nextHops["backends"]} resolved"
            : $"{unresolved} UNRESOLVED (the datapath cannot forward to these backends itself)"));
        foreach (var problem in nextHops["problems"]!.AsArray())
        {
            Console.WriteLine($"            {problem!["backend"],-16} {problem["problem"]}");
        }
        var drops = status["drops"]!.AsObject().Where(d => d.Value!.GetValue<ulong>() > 0).ToList();
        Console.WriteLine("Drops:      " + (drops.Count == 0 ? "none" : string.Join("  ", drops.Select(d => $"{d.Key} {d.Value}"))));
        Console.WriteLine($"Versions:   sluiced {status["versions"]!["sluiced"]}  abi {status["versions"]!["abi"]}  kernel {status["versions"]!["kernel"]}");
        Console.WriteLine();
        ServiceCommands.PrintTable(services);
        return healthy ? ExitCodes.Ok : ExitCodes.Refused;
    }
}
