using System.Text.Json.Nodes;
using Sluice.Testing;

namespace Sluice.Tests.Api;

/// <summary>sluicectl as an operator runs it, against the real sluiced, found through the config file.</summary>
public sealed class SluicectlTests(DaemonFixture fixture) : IClassFixture<DaemonFixture>
{
    private (int ExitCode, string Output) Ctl(params string[] arguments) => fixture.Daemon.Ctl(arguments);

    [RootFact]
    public void StatusIsOneScreenAboutTheDatapath()
    {
        var (exit, output) = Ctl("status");
        Assert.True(exit == 0, output);
        Assert.Contains("Datapath:   OK", output);
        Assert.Contains("a0", output);
        Assert.Contains("native", output);
        Assert.Contains("attached", output);
        Assert.Contains("Drops:      none", output);
        Assert.Contains("web", output);

        (exit, output) = Ctl("status", "-o", "json");
        Assert.Equal(0, exit);
        Assert.True(JsonNode.Parse(output)!["status"]!["datapath"]!["healthy"]!.GetValue<bool>());
    }

    [RootFact]
    public async Task ServicesAreAppliedListedShownAndDeleted()
    {
        var file = Path.Combine(fixture.Daemon.Directory, "apply.yaml");
        File.WriteAllText(file, """
            services:
              cli-web:
                vip: 198.18.100.40
                port: 80
                backends:
                  - { address: 198.18.2.5, port: 8080 }
                  - { address: 198.18.2.6, port: 8080, weight: 2 }
            """);
        var (exit, output) = Ctl("service", "apply", "-f", file);
        Assert.True(exit == 0, output);
        Assert.Contains("service cli-web created", output);
        (exit, output) = Ctl("service", "apply", "-f", file);
        Assert.Contains("service cli-web configured", output);

        (exit, output) = Ctl("service", "list");
        Assert.Equal(0, exit);
        Assert.Matches(@"cli-web\s+api\s+198\.18\.100\.40:80/tcp\s+fullnat\s+2/2", output);
        Assert.Matches(@"web\s+config\s+198\.18\.100\.10:80/tcp", output);

        (exit, output) = Ctl("service", "get", "cli-web", "-o", "json");
        Assert.Equal(0, exit);
        Assert.Equal(2, JsonNode.Parse(output)!["spec"]!["backends"]![1]!["weight"]!.GetValue<int>());

        (exit, output) = Ctl("backend", "drain", "cli-web", "198.18.2.5:8080");
        Assert.Equal(0, exit);
        Assert.Contains("198.18.2.5:8080 of cli-web draining", output);
        // With no flow to wait for, the drain finishes at once: sluiced removes the backend.
        await Poll.Until(() => !Ctl("service", "get", "cli-web", "-o", "json").Output.Contains("198.18.2.5"), "the drained backend is removed");
        Assert.Equal(0, Ctl("backend", "add", "cli-web", "198.18.2.5:8080").ExitCode);
        Assert.Equal(0, Ctl("backend", "undrain", "cli-web", "198.18.2.5:8080").ExitCode);
        Assert.Equal(0, Ctl("backend", "add", "cli-web", "198.18.2.7:8080", "--weight", "5").ExitCode);
        Assert.Equal(0, Ctl("backend", "remove", "cli-web", "198.18.2.6:8080").ExitCode);
        (_, output) = Ctl("service", "get", "cli-web", "-o", "json");
        var backends = JsonNode.Parse(output)!["spec"]!["backends"]!.AsArray().Select(b => $"{b!["address"]}:{b["port"]}/{b["weight"]}/{b["state"]}");
        Assert.Equal(["198.18.2.5:8080/1/active", "198.18.2.7:8080/5/active"], backends);

        Assert.Equal(0, Ctl("service", "delete", "cli-web").ExitCode);
        Assert.Equal(1, Ctl("service", "get", "cli-web").ExitCode);
    }

    [RootFact]
    public void ExitCodesMeanWhatTheySay()
    {
        var (exit, output) = Ctl("service", "delete", "web"); // owned by the config file
        Assert.Equal(1, exit);
        Assert.Contains("409", output);

        var bad = Path.Combine(fixture.Daemon.Directory, "bad.yaml");
        File.WriteAllText(bad, "services:\n  x:\n    vip: 198.18.100.50\n    port: 99999\n");
        (exit, output) = Ctl("service", "apply", "-f", bad);
        Assert.Equal(2, exit);
        Assert.Contains("services.x.port: must be 1-65535", output);

        (exit, output) = Ctl("backend", "add", "web", "198.18.2.9:80", "--weight", "-3");
        Assert.Equal(1, exit); // web is the config's: 409 before any field check
        (exit, _) = Ctl("frobnicate");
        Assert.Equal(2, exit);
        (exit, output) = Command.TryRun("dotnet", SluicedProcess.CliDll, "--api", "http://127.0.0.1:1", "--token-file", fixture.Daemon.TokenPath, "status");
        Assert.Equal(3, exit);
        Assert.Contains("cannot reach sluiced", output);
    }

    [RootFact]
    public void DatapathRemoveRefusesWhileSluicedRuns()
    {
        var (exit, output) = Ctl("datapath", "remove");
        Assert.Equal(1, exit);
        Assert.Contains("stop it first", output);
    }
}
