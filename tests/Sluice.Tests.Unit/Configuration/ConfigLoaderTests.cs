using Sluice.Model.Configuration;

namespace Sluice.Tests.Unit.Configuration;

public sealed class ConfigLoaderTests
{
    private const string Minimal = """
        datapath:
          interfaces: [eth1]
          snatAddresses: [198.18.200.1]
        services:
          web:
            vip: 198.18.100.10
            port: 80
            backends:
              - { address: 198.18.2.2, port: 8080 }
              - { address: 198.18.2.3, port: 8080, weight: 2 }
        """;

    [Fact]
    public void AMinimalFileGetsEveryDefault()
    {
        var result = ConfigLoader.Parse(Minimal);
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
        var config = result.Config!;
        Assert.Equal("native", config.Datapath.AttachMode);
        Assert.Equal("/sys/fs/bpf/sluice", config.Datapath.PinPath);
        Assert.Equal(1048576, config.Datapath.FlowTableSize);
        Assert.Equal("127.0.0.1:9080", config.Api.Listen);
        Assert.Equal("/etc/sluice/api.token", config.Api.TokenFile);
        Assert.Equal("127.0.0.1:9091", config.Metrics.Listen);
        Assert.Equal("/var/lib/sluice", config.StateDirectory);
        var web = config.Services["web"];
        Assert.Equal(("tcp", "fullnat", "maglev", "none"), (web.Protocol, web.Mode, web.Scheduler, web.Affinity));
        Assert.Equal(2, web.Backends[1].Weight);
    }

    [Fact]
    public void JsonIsValidYaml()
    {
        var result = ConfigLoader.Parse("""{"datapath": {"interfaces": ["eth1"]}, "services": {}}""");
        Assert.True(result.IsValid, string.Join("\n", result.Errors));
    }

    [Fact]
    public void EveryErrorIsReportedAtOnceWithItsPath()
    {
        var result = ConfigLoader.Parse("""
            datapath:
              attachMode: turbo
              snatAddresses: [198.18.200.1, not-an-ip]
              pinPath: relative/path
              flowTableSize: 10
            api:
              listen: nowhere
            services:
              web:
                vip: 198.18.100.300
                port: 0
                protocol: sctp
                mode: dsr
                affinity: sometimes
                maglevTableSize: 1000
                backends:
                  - { address: 198.18.2.2, port: 65536 }
                  - { address: 198.18.2.2, port: 65536, weight: -1, state: gone }
                  - { port: 80 }
                healthCheck: { type: ping, intervalMs: 10, timeoutMs: 5, rise: 0, fall: 101, path: nope }
              Bad_Name:
                vip: 198.18.100.11
                port: 80
              other:
                vip: 198.18.100.11
                port: 80
            """);
        Assert.False(result.IsValid);
        var paths = result.Errors.Select(e => e.Path).ToHashSet();
        string[] expected =
        [
            "datapath.interfaces", "datapath.attachMode", "datapath.snatAddresses[1]", "datapath.pinPath",
            "datapath.flowTableSize", "api.listen", "services.web.vip", "services.web.port", "services.web.protocol",
            "services.web.mode", "services.web.affinity", "services.web.maglevTableSize",
            "services.web.backends[0].port", "services.web.backends[1].weight", "services.web.backends[1].state",
            "services.web.backends[1]", "services.web.backends[2].address",
            "services.web.healthCheck.type", "services.web.healthCheck.intervalMs", "services.web.healthCheck.timeoutMs",
            "services.web.healthCheck.rise", "services.web.healthCheck.fall", "services.web.healthCheck.path",
            "services.Bad_Name", "services.other",
        ];
        Assert.All(expected, path => Assert.Contains(path, paths));
        Assert.Contains(result.Errors, e => e.Path == "services.web.backends[0].port" && e.Message == "must be 1-65535");
        Assert.Contains(result.Errors, e => e.Path == "services.web.mode" && e.Message.Contains("dsr is not supported yet"));
    }

    [Fact]
    public void HealthCheckDrainAndListenerErrorsAreEachNamed()
    {
        var result = ConfigLoader.Parse("""
            datapath:
              interfaces: [eth1]
            api:
              listen: 127.0.0.1:9080
            metrics:
              listen: 0.0.0.0:9080
            services:
              web:
                vip: 198.18.100.10
                port: 80
                mode: dnat
                drainTimeoutMs: -1
                healthCheck: { type: tcp, port: 0, payload: hello, expectStatus: "200" }
              api:
                vip: 198.18.100.10
                port: 443
                mode: dnat
                healthCheck: { type: https, expectStatus: "500-200" }
              dns:
                vip: 198.18.100.10
                port: 53
                protocol: udp
                mode: dnat
                healthCheck: { type: udp, payload: "", path: /x }
            """);
        Assert.False(result.IsValid);
        var errors = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Equal("must use another port than api.listen", errors["metrics.listen"]);
        Assert.Equal("must be 0-86400000", errors["services.web.drainTimeoutMs"]);
        Assert.Equal("must be 1-65535", errors["services.web.healthCheck.port"]);
        Assert.Equal("only for udp checks", errors["services.web.healthCheck.payload"]);
        Assert.Equal("only for http and https checks", errors["services.web.healthCheck.expectStatus"]);
        Assert.Equal("must be a status 100-599 or a range such as 200-399", errors["services.api.healthCheck.expectStatus"]);
        Assert.Equal("must be 1-1024 characters", errors["services.dns.healthCheck.payload"]);
        Assert.Equal("only for http and https checks", errors["services.dns.healthCheck.path"]);
        Assert.Equal(8, errors.Count);
    }

    [Fact]
    public void ConnectionSettingsHaveDefaultsAndEachBadOneIsNamed()
    {
        var defaults = ConfigLoader.Parse(Minimal).Config!.Datapath.Connections;
        Assert.Equal((10d, 21600d, 600d, 2d, 60d, 1000L), (defaults.TcpHandshakeSeconds, defaults.TcpEstablishedSeconds,
            defaults.TcpHalfClosedSeconds, defaults.TcpClosedSeconds, defaults.UdpSeconds, defaults.SweepIntervalMs));
        Assert.Null(defaults.HandshakeLimit);

        var result = ConfigLoader.Parse("""
            datapath:
              interfaces: [eth1]
              flowTableSize: 4096
              connections:
                handshakeLimit: 5000
                tcpHandshakeSeconds: 0
                tcpEstablishedSeconds: 700000
                tcpHalfClosedSeconds: -1
                tcpClosedSeconds: 0.05
                udpSeconds: 0.1
                sweepIntervalMs: 10
            """);
        Assert.False(result.IsValid);
        var errors = result.Errors.ToDictionary(e => e.Path, e => e.Message);
        Assert.Equal("must be 1-4096 (datapath.flowTableSize)", errors["datapath.connections.handshakeLimit"]);
        Assert.Equal("must be 1-604800 seconds", errors["datapath.connections.tcpHandshakeSeconds"]);
        Assert.Equal("must be 2-604800 seconds", errors["datapath.connections.tcpEstablishedSeconds"]);
        Assert.Equal("must be 2-604800 seconds", errors["datapath.connections.tcpHalfClosedSeconds"]);
        Assert.Equal("must be 0.1-604800 seconds", errors["datapath.connections.tcpClosedSeconds"]);
        Assert.Equal("must be 2-604800 seconds", errors["datapath.connections.udpSeconds"]); // under the 1 s refresh of last-seen times
        Assert.Equal("must be 100-60000", errors["datapath.connections.sweepIntervalMs"]);
        Assert.Equal(7, errors.Count);
    }

    [Fact]
    public void UnknownKeysAreNamedWithTheirPathAllOfThem()
    {
        var result = ConfigLoader.Parse("""
            datapath:
              interfaces: [eth1]
              interface: eth2
            apii: {}
            services:
              web:
                vip: 198.18.100.10
                port: 80
                backends:
                  - { address: 198.18.2.2, port: 8080, wieght: 3 }
            """);
        Assert.False(result.IsValid);
        Assert.Equal(["apii", "datapath.interface", "services.web.backends[0].wieght"], result.Errors.Select(e => e.Path).Order());
        Assert.Contains("known here", result.Errors[0].Message);
    }

    [Fact]
    public void FullNatWithoutSnatAddressesIsAnError()
    {
        var result = ConfigLoader.Parse("""
            datapath: { interfaces: [eth1] }
            services:
              web: { vip: 198.18.100.10, port: 80, mode: fullnat }
              dns: { vip: 198.18.100.10, port: 53, protocol: udp, mode: dnat }
            """);
        var error = Assert.Single(result.Errors);
        Assert.Equal("services.web.mode", error.Path);
    }

    [Fact]
    public void AFileThatDoesNotParseGivesLineAndColumn()
    {
        var result = ConfigLoader.Parse("datapath:\n  interfaces: [eth1]\n bad: indentation\n");
        var error = Assert.Single(result.Errors);
        Assert.StartsWith("line 3", error.Path);
    }

    [Fact]
    public void AnUnclosedBracketIsOneClearError()
    {
        var result = ConfigLoader.Parse("datapath:\n  interfaces: [eth1\nservices: {}\n");
        var error = Assert.Single(result.Errors);
        Assert.Contains("not valid YAML", error.Message);
    }

    [Fact]
    public void AWrongTypeGivesLineAndColumn()
    {
        var result = ConfigLoader.Parse("datapath:\n  interfaces: [eth1]\n  flowTableSize: lots\n");
        var error = Assert.Single(result.Errors);
        Assert.Equal("line 3, column 18", error.Path);
    }

    [Fact]
    public void AMissingFileIsAnErrorNotAnException()
    {
        var result = ConfigLoader.Load("/nonexistent/sluice.yaml");
        Assert.Contains("cannot be read", Assert.Single(result.Errors).Message);
    }
}
