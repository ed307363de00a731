using Sluice.Datapath.Loading;
using Sluice.Model.Configuration;

namespace Sluice.Cli.Commands;

/// <summary>
/// sluicectl datapath remove: detach the program and remove the pinned maps, on purpose.
/// Runs locally (root, in the load balancer's network namespace) and only while sluiced
/// is stopped, which would otherwise put the datapath straight back.
/// </summary>
public static class DatapathCommands
{
    public static async Task<int> Run(CommandLine line)
    {
        if (line.Word(1, "a datapath command (remove)") != "remove")
        {
            throw new CliException(ExitCodes.Usage, $"unknown datapath command {line.Words[1]}");
        }
        var configPath = line.Option("--config") ?? "/etc/sluice/sluice.yaml";
        var loaded = ConfigLoader.Load(configPath);
        if (!loaded.IsValid)
        {
            throw new CliException(ExitCodes.Usage, $"{configPath} is invalid: {string.Join("; ", loaded.Errors)}");
        }
        var config = loaded.Config!;
        try
        {
            using var api = ApiClient.Connect(line);
            await api.Send(HttpMethod.Get, "api/v1/status");
            throw new CliException(ExitCodes.Refused, "sluiced is running and would attach again: stop it first (systemctl stop sluice)");
        }
        catch (CliException ex) when (ex.ExitCode == ExitCodes.Unreachable)
        {
            // not running: go ahead
        }
        foreach (var name in config.Datapath.Interfaces!)
        {
            try
            {
                XdpDatapath.Detach(name);
                Console.WriteLine($"detached XDP from {name}");
            }
            catch (Exception ex) when (ex is DatapathException or Sluice.Datapath.Interop.BpfException)
            {
                throw new CliException(ExitCodes.Refused, $"{ex.Message}; pinned maps left in place");
            }
        }
        XdpDatapath.Unpin(config.Datapath.PinPath);
        Console.WriteLine($"removed pinned maps at {config.Datapath.PinPath}");
        return ExitCodes.Ok;
    }
}
