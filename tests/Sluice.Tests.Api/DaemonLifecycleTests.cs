using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Sluice.Datapath.Loading;
using Sluice.Testing;

namespace Sluice.Tests.Api;

/// <summary>sluiced's life: systemd notifications, SIGHUP reloads, --check-config. Each test has its own daemon.</summary>
public sealed class DaemonLifecycleTests
{
    private static string Config(string directory, string pinPath, string services = "") => $"""
        datapath:
          interfaces: [a0]
          snatAddresses: [198.18.200.1]
          pinPath: {pinPath}
          flowTableSize: 4096
          maxServices: 64
          maxBackends: 512
        api:
          listen: 127.0.0.1:9080
          tokenFile: {directory}/api.token
        stateDirectory: {directory}/state
        services:
        {services}
        """;

    private const string WebService = """
          web:
            vip: 198.18.100.10
            port: 80
            backends:
              - address: 198.18.2.2
                port: 8080
        """;

    private const string DnsService = """
          dns:
            vip: 198.18.100.10
            port: 53
            protocol: udp
            mode: dnat
            backends:
              - address: 198.18.2.3
                port: 53
        """;

    /// <summary>A namespace with a veth, a temp directory and a pin path, all removed afterwards.</summary>
    private sealed class Scene : IDisposable
    {
        public Scene()
        {
            Namespace = new TestNamespace("life");
            Namespace.Exec("ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1");
            Namespace.Exec("ip", "link", "set", "a0", "up");
            Namespace.Exec("ip", "link", "set", "a1", "up");
            Directory = System.IO.Directory.CreateTempSubdirectory("sluice-life-").FullName;
        }

        public TestNamespace Namespace { get; }
        public string Directory { get; }
        public string PinPath { get; } = $"/sys/fs/bpf/sluice-life-{Guid.NewGuid():N}";

        public void Dispose()
        {
            Namespace.Dispose();
            if (System.IO.Directory.Exists(PinPath)) XdpDatapath.Unpin(PinPath);
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }

    /// <summary>A notify socket as systemd keeps one: always read, every message kept in order.</summary>
    private sealed class NotifyListener : IDisposable
    {
        private readonly Socket socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        private readonly CancellationTokenSource stop = new();
        private readonly List<string> messages = [];
        private readonly Task reading;

        public NotifyListener(string path)
        {
            Path = path;
            socket.Bind(new UnixDomainSocketEndPoint(path));
            reading = Task.Run(async () =>
            {
                var buffer = new byte[4096];
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        var n = await socket.ReceiveAsync(buffer, stop.Token);
                        lock (messages) messages.AddRange(Encoding.UTF8.GetString(buffer, 0, n).Split('\n', StringSplitOptions.RemoveEmptyEntries));
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            });
        }

        public string Path { get; }

        public List<string> Messages
        {
            get { lock (messages) return [.. messages]; }
        }

        public int Count(string message) => Messages.Count(m => m == message);

        public void Dispose()
        {
            stop.Cancel();
            reading.Wait(TimeSpan.FromSeconds(5));
            socket.Dispose();
        }
    }

    /// <summary>systemd is not PID 1 here: sluiced is, in a PID namespace of its own, with a notify socket.</summary>
    private static void StartAsSystemdWould(SluicedProcess daemon, NotifyListener notify, int watchdogMicroseconds) =>
        daemon.Start(wrapper: ["unshare", "--pid", "--fork", "--mount-proc", "env", $"NOTIFY_SOCKET={notify.Path}", $"WATCHDOG_USEC={watchdogMicroseconds}"]);

    /// <summary>SIGTERM to sluiced itself: PID 1 of its namespace, the child of the unshare we started.</summary>
    private static void StopAsSystemdWould(SluicedProcess daemon)
    {
        var inner = int.Parse(File.ReadAllText($"/proc/{daemon.Pid}/task/{daemon.Pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]);
        Tmds.Linux.LibC.kill(inner, SluicedProcess.SIGTERM);
        daemon.WaitForExit(TimeSpan.FromSeconds(30));
    }

    [RootFact]
    public async Task SystemdHearsReadyStatusWatchdogAndStopping()
    {
        using var scene = new Scene();
        using var notify = new NotifyListener(Path.Combine(scene.Directory, "notify.sock"));
        using var daemon = new SluicedProcess(scene.Namespace.Name, scene.Directory, Config(scene.Directory, scene.PinPath, WebService));
        StartAsSystemdWould(daemon, notify, 400_000);
        await Until(() => notify.Count("WATCHDOG=1") >= 2, "two WATCHDOG=1");
        Assert.True(notify.Count("READY=1") == 1, string.Join(" | ", notify.Messages));
        Assert.Contains(notify.Messages, m => m.StartsWith("STATUS=forwarding: 1 service(s) on a0(native)", StringComparison.Ordinal));
        StopAsSystemdWould(daemon);
        Assert.Equal(1, notify.Count("STOPPING=1"));
        // READY came before any watchdog ping: nothing is pinged before the datapath is up.
        var ordered = notify.Messages;
        Assert.True(ordered.IndexOf("READY=1") < ordered.IndexOf("WATCHDOG=1"), string.Join(" | ", ordered));
    }

    [RootFact]
    public async Task NoWatchdogPingWhileTheProgramIsGone()
    {
        using var scene = new Scene();
        using var notify = new NotifyListener(Path.Combine(scene.Directory, "notify.sock"));
        using var daemon = new SluicedProcess(scene.Namespace.Name, scene.Directory, Config(scene.Directory, scene.PinPath, WebService));
        StartAsSystemdWould(daemon, notify, 200_000);
        await Until(() => notify.Count("WATCHDOG=1") >= 1, "a first WATCHDOG=1");

        Command.InNamespace(scene.Namespace.Name, "ip", "link", "set", "dev", "a0", "xdp", "off"); // someone removes our program
        await Until(() => notify.Messages.Any(m => m.StartsWith("STATUS=DEGRADED: no XDP program on a0", StringComparison.Ordinal)), "STATUS=DEGRADED");
        var pingsWhenDegraded = notify.Count("WATCHDOG=1");
        await Task.Delay(1000); // five watchdog intervals
        Assert.Equal(pingsWhenDegraded, notify.Count("WATCHDOG=1"));
        using var anonymous = daemon.Client(authenticated: false);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await anonymous.GetAsync("/readyz")).StatusCode);
        StopAsSystemdWould(daemon);
    }

    [RootFact]
    public async Task AServiceBeyondTheDatapathsCapacityIsA507AndChangesNothing()
    {
        using var scene = new Scene();
        using var daemon = new SluicedProcess(scene.Namespace.Name, scene.Directory, Config(scene.Directory, scene.PinPath, WebService));
        daemon.Start();
        using var api = daemon.Client();
        for (var i = 1; i < 64; i++) // maxServices: 64, one taken by the config's web
        {
            var body = $$"""{"vip": "198.18.101.{{i}}", "port": 80, "backends": [{"address": "198.18.2.2", "port": 8080}]}""";
            Assert.Equal(System.Net.HttpStatusCode.Created, (await api.PutAsync($"/api/v1/services/s{i}", new StringContent(body, System.Text.Encoding.UTF8, "application/json"))).StatusCode);
        }
        var before = await api.GetStringAsync("/api/v1/services");
        var refused = await api.PutAsync("/api/v1/services/one-too-many", new StringContent(
            """{"vip": "198.18.102.1", "port": 80, "backends": [{"address": "198.18.2.2", "port": 8080}]}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal((System.Net.HttpStatusCode)507, refused.StatusCode);
        Assert.Contains("all 64 service slots (datapath.maxServices) are in use", await refused.Content.ReadAsStringAsync());
        Assert.Equal(before, await api.GetStringAsync("/api/v1/services"));
        Assert.DoesNotContain("one-too-many", File.ReadAllText(Path.Combine(scene.Directory, "state", "api-services.json")));
    }

    [RootFact]
    public async Task SighupReloadsAValidFileAndKeepsTheRunningStateOnABadOne()
    {
        using var scene = new Scene();
        using var daemon = new SluicedProcess(scene.Namespace.Name, scene.Directory, Config(scene.Directory, scene.PinPath, WebService));
        daemon.Start();
        using var api = daemon.Client();

        File.WriteAllText(daemon.ConfigPath, Config(scene.Directory, scene.PinPath, WebService + "\n" + DnsService));
        daemon.Signal(SluicedProcess.SIGHUP);
        await Until(async () => (await api.GetAsync("/api/v1/services/dns")).StatusCode == HttpStatusCode.OK, "dns after SIGHUP");
        var before = await api.GetStringAsync("/api/v1/services");

        File.WriteAllText(daemon.ConfigPath, Config(scene.Directory, scene.PinPath, WebService.Replace("port: 80\n", "port: 0\n")));
        daemon.Signal(SluicedProcess.SIGHUP);
        await Until(() => daemon.Log().Contains("services.web.port: must be 1-65535"), "the refusal in the log");
        Assert.Equal(before, await api.GetStringAsync("/api/v1/services"));

        // A file that claims an API-owned VIP:port is refused whole, too.
        var created = await api.PutAsync("/api/v1/services/mine",
            new StringContent("""{"vip": "198.18.100.30", "port": 80, "backends": []}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        before = await api.GetStringAsync("/api/v1/services");
        File.WriteAllText(daemon.ConfigPath, Config(scene.Directory, scene.PinPath, WebService.Replace("198.18.100.10", "198.18.100.30")));
        daemon.Signal(SluicedProcess.SIGHUP);
        await Until(() => daemon.Log().Contains("198.18.100.30:80/tcp is already used by service mine"), "the conflict in the log");
        Assert.Equal(before, await api.GetStringAsync("/api/v1/services"));
        var dns = JsonNode.Parse(await api.GetStringAsync("/api/v1/services/dns"))!;
        Assert.Equal("config", dns["owner"]!.GetValue<string>());
    }

    [RootFact]
    public void ACorruptStateFileStopsTheStartWithAClearError()
    {
        using var scene = new Scene();
        Directory.CreateDirectory(Path.Combine(scene.Directory, "state"));
        File.WriteAllText(Path.Combine(scene.Directory, "state", "api-services.json"), "{ half a file");
        using var daemon = new SluicedProcess(scene.Namespace.Name, scene.Directory, Config(scene.Directory, scene.PinPath, WebService));
        daemon.Start(waitReady: false);
        Assert.NotEqual(0, daemon.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.Contains("api-services.json is corrupt", daemon.Log());
    }

    [Fact]
    public void CheckConfigPrintsEveryErrorOrASummary()
    {
        var directory = Directory.CreateTempSubdirectory("sluice-check-").FullName;
        try
        {
            var good = Path.Combine(directory, "good.yaml");
            File.WriteAllText(good, Config(directory, "/sys/fs/bpf/x", WebService));
            var (exit, output) = Command.TryRun("dotnet", SluicedProcess.DaemonDll, "--config", good, "--check-config");
            Assert.Equal(0, exit);
            Assert.Contains("valid; 1 service(s), 1 backend(s), interfaces a0", output);

            var bad = Path.Combine(directory, "bad.yaml");
            File.WriteAllText(bad, Config(directory, "relative", WebService.Replace("8080", "65536").Replace("198.18.100.10", "nowhere")));
            (exit, output) = Command.TryRun("dotnet", SluicedProcess.DaemonDll, "--config", bad, "--check-config");
            Assert.Equal(1, exit);
            Assert.Contains("datapath.pinPath: must be an absolute path", output);
            Assert.Contains("services.web.vip: \"nowhere\" is not an IPv4 address", output);
            Assert.Contains("services.web.backends[0].port: must be 1-65535", output);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task Until(Func<bool> condition, string what) => await Until(() => Task.FromResult(condition()), what);

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(50);
        }
        Assert.Fail($"waited 20 s for {what}");
    }
}
