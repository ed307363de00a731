using Sluice.Datapath.Loading;
using Sluice.Testing;

namespace Sluice.Tests.Api;

/// <summary>A namespace with one veth pair and the real sluiced attached to it.</summary>
public sealed class DaemonFixture : IDisposable
{
    private readonly TestNamespace? netns;
    private readonly string directory = Path.Combine(Path.GetTempPath(), $"sluice-api-{Guid.NewGuid():N}");
    private readonly string pinPath = $"/sys/fs/bpf/sluice-api-{Guid.NewGuid():N}";

    public DaemonFixture()
    {
        if (Privileges.SkipReason is not null)
        {
            return;
        }
        try
        {
            netns = new TestNamespace("api");
            netns.Exec("ip", "link", "add", "a0", "type", "veth", "peer", "name", "a1");
            netns.Exec("ip", "link", "set", "a0", "up");
            netns.Exec("ip", "link", "set", "a1", "up");
            Directory.CreateDirectory(directory);
            Daemon = new SluicedProcess(netns.Name, directory, $"""
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
                  maxRequestBytes: 65536
                stateDirectory: {directory}/state
                services:
                  web:
                    vip: 198.18.100.10
                    port: 80
                    backends:
                      - address: 198.18.2.2
                        port: 8080
                """);
            Daemon.Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public SluicedProcess Daemon { get; } = null!;

    public string NamespaceName => netns?.Name ?? "";

    public void Dispose()
    {
        Daemon?.Dispose();
        netns?.Dispose(); // takes the veth and its XDP attachment with it
        if (Directory.Exists(pinPath))
        {
            XdpDatapath.Unpin(pinPath);
        }
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
