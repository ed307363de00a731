using Sluice.Testing;

namespace Sluice.Tests.Api;

/// <summary>
/// systemd/sluice.service as shipped: systemd's own verifier accepts it, and its
/// ExecStartPre really stops a start with a broken config.
/// </summary>
public sealed class SystemdUnitTests
{
    private static readonly string UnitPath = Path.Combine(Repository.Root, "systemd", "sluice.service");
    private static readonly string Sluiced = Repository.Binary("Sluice.Daemon", "sluiced"); // the apphost

    [ToolFact("systemd-analyze", "systemd")]
    public void SystemdAnalyzeVerifiesTheUnitWithoutAComplaint()
    {
        var (exit, output) = Verify(File.ReadAllText(UnitPath));
        Assert.True(exit == 0 && output.Trim().Length == 0, $"systemd-analyze verify exited {exit}:\n{output}");
    }

    [ToolFact("systemd-analyze", "systemd")]
    public void TheVerifierWouldCatchAMistake()
    {
        // The check above is only worth something if the verifier complains about a slip.
        var (_, output) = Verify(File.ReadAllText(UnitPath).Replace("WatchdogSec=", "WatchdogSecs="));
        Assert.Contains("WatchdogSecs", output);
    }

    [Fact]
    public void TheUnitWaitsForReadinessPingsTheWatchdogAndChecksTheConfigFirst()
    {
        var unit = Directives(File.ReadAllText(UnitPath));
        Assert.Equal("notify", unit["Type"]);
        Assert.True(int.Parse(unit["WatchdogSec"]) > 0);
        Assert.Equal("/usr/bin/sluiced --config /etc/sluice/sluice.yaml --check-config", unit["ExecStartPre"]);
        Assert.Equal("/usr/bin/sluiced --config /etc/sluice/sluice.yaml", unit["ExecStart"]);
        Assert.Equal("sluice", unit["StateDirectory"]); // /var/lib/sluice, as architecture.md names it
        Assert.Equal("infinity", unit["LimitMEMLOCK"]);  // kernels before 5.11 charge BPF maps to it
    }

    [Fact]
    public void ExecStartPreFailsOnABrokenConfigAndPassesAGoodOne()
    {
        var directory = Directory.CreateTempSubdirectory("sluice-unit-").FullName;
        try
        {
            var config = Path.Combine(directory, "sluice.yaml");
            var command = Directives(File.ReadAllText(UnitPath))["ExecStartPre"]
                .Replace("/usr/bin/sluiced", Sluiced).Replace("/etc/sluice/sluice.yaml", config).Split(' ');

            File.WriteAllText(config, $"datapath:\n  interfaces: [eth1]\napi:\n  tokenFile: {directory}/token\nstateDirectory: {directory}\n");
            var (exit, output) = Command.TryRun(command[0], command[1..]);
            Assert.True(exit == 0, output);

            File.WriteAllText(config, "datapath:\n  interfaces: []\n  attachMode: sideways\n");
            (exit, output) = Command.TryRun(command[0], command[1..]);
            Assert.Equal(1, exit);
            Assert.Contains("datapath.attachMode", output);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static (int Exit, string Output) Verify(string unitText)
    {
        // The unit names the installed /usr/bin/sluiced; verify it against the one just built.
        var directory = Directory.CreateTempSubdirectory("sluice-unit-").FullName;
        try
        {
            var unit = Path.Combine(directory, "sluice.service");
            File.WriteAllText(unit, unitText.Replace("/usr/bin/sluiced", Sluiced));
            return Command.TryRun("systemd-analyze", "verify", "--man=no", unit);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static Dictionary<string, string> Directives(string unitText) =>
        unitText.Split('\n')
            .Select(line => line.Trim())
            .Where(line => line.Length > 0 && line[0] is not ('#' or '['))
            .Select(line => line.Split('=', 2))
            .GroupBy(pair => pair[0])
            .ToDictionary(group => group.Key, group => group.Last()[1]);
}
