using System.Net;
using System.Net.Sockets;
using Sluice.Testing;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// client -- LB -- three backends, each in a network namespace of its own, with real
/// servers on the backends; <see cref="LoadBalancerTopology"/> adds the datapath:
///
///   client c0 198.19.10.2  ---  lbc 198.19.10.1 [LB] lbbN 198.18.1N.1  ---  b0 198.18.1N.2 backend-N
///
/// Endpoints have GRO on (XDP redirect into a veth needs NAPI on the receiving peer) and tx
/// checksum offload off, or left on (the veth default: their packets reach XDP with partial
/// checksums, which the datapath must finish) when <see cref="ChecksumOffload"/> says so.
/// </summary>
public class NetworkTopology : IDisposable
{
    public static readonly IPAddress ClientAddress = IPAddress.Parse("198.19.10.2");
    public static readonly IPAddress SnatAddress = IPAddress.Parse("198.18.200.1");

    private readonly List<TestNamespace> namespaces = [];
    private readonly List<NamespaceThread> threads = [];

    public NetworkTopology()
        : this(checksumOffload: false)
    {
    }

    public NetworkTopology(bool checksumOffload)
    {
        ChecksumOffload = checksumOffload;
        if (Privileges.SkipReason is not null)
        {
            return;
        }
        try
        {
            Build();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool ChecksumOffload { get; }

    private string TxOffload => ChecksumOffload ? "on" : "off";

    /// <summary>False when the tests skip (no root): nothing was set up.</summary>
    public bool Built => Balancer is not null;

    public TestNamespace Client { get; private set; } = null!;

    public TestNamespace Balancer { get; private set; } = null!;

    public IReadOnlyList<TestNamespace> BackendNamespaces { get; private set; } = [];

    public IReadOnlyList<BackendServer> Backends { get; private set; } = [];

    public NamespaceThread ClientThread { get; private set; } = null!;

    public NamespaceThread BalancerThread { get; private set; } = null!;

    /// <summary>A socket of the client's network namespace.</summary>
    public Socket ClientSocket(SocketType type, ProtocolType protocol) => ClientThread.Run(() => new Socket(AddressFamily.InterNetwork, type, protocol));

    public static IPAddress BackendAddress(int n) => IPAddress.Parse($"198.18.1{n}.2");

    private void Build()
    {
        Client = Add(new TestNamespace("e2e-cl"));
        Balancer = Add(new TestNamespace("e2e-lb"));
        Balancer.Sysctl("net.ipv4.ip_forward", "1");
        Balancer.Sysctl("net.ipv4.conf.all.rp_filter", "0");
        Balancer.Sysctl("net.ipv4.conf.default.rp_filter", "0");
        Command.Run("ip", "-n", Balancer.Name, "link", "add", "lbc", "type", "veth", "peer", "name", "c0", "netns", Client.Name);
        Balancer.Exec("ip", "addr", "add", "198.19.10.1/24", "dev", "lbc");
        Balancer.Exec("ip", "link", "set", "lbc", "up");
        Client.Exec("ip", "addr", "add", "198.19.10.2/24", "dev", "c0");
        Client.Exec("ip", "link", "set", "c0", "up");
        Client.Exec("ip", "route", "add", "198.18.100.0/24", "via", "198.19.10.1");
        Client.Exec("ethtool", "-K", "c0", "tx", TxOffload, "gro", "on");

        var backendNamespaces = new List<TestNamespace>();
        for (var n = 1; n <= 3; n++)
        {
            var ns = Add(new TestNamespace($"e2e-be{n}"));
            backendNamespaces.Add(ns);
            Command.Run("ip", "-n", Balancer.Name, "link", "add", $"lbb{n}", "type", "veth", "peer", "name", "b0", "netns", ns.Name);
            Balancer.Exec("ip", "addr", "add", $"198.18.1{n}.1/24", "dev", $"lbb{n}");
            Balancer.Exec("ip", "link", "set", $"lbb{n}", "up");
            ns.Exec("ip", "addr", "add", $"198.18.1{n}.2/24", "dev", "b0");
            ns.Exec("ip", "link", "set", "b0", "up");
            ns.Exec("ip", "route", "add", "198.18.200.0/24", "via", $"198.18.1{n}.1"); // fullnat replies
            ns.Exec("ip", "route", "add", "198.19.10.0/24", "via", $"198.18.1{n}.1");  // dnat replies
            ns.Exec("ethtool", "-K", "b0", "tx", TxOffload, "gro", "on");
        }
        BackendNamespaces = backendNamespaces;

        ClientThread = AddThread(new NamespaceThread(Client.Name));
        BalancerThread = AddThread(new NamespaceThread(Balancer.Name));
        Backends = backendNamespaces.Select((ns, i) =>
        {
            var thread = AddThread(new NamespaceThread(ns.Name));
            return new BackendServer($"backend-{i + 1}", BackendAddress(i + 1), create => thread.Run(create));
        }).ToList();
    }

    /// <summary>InCsumErrors for TCP and UDP in a namespace: nonzero means a checksum was broken on the way.</summary>
    public static (long Tcp, long Udp) ChecksumErrors(TestNamespace ns)
    {
        var lines = ns.Exec("cat", "/proc/net/snmp").Split('\n');
        long Read(string protocol)
        {
            var rows = lines.Where(l => l.StartsWith(protocol + ":", StringComparison.Ordinal)).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
            var column = Array.IndexOf(rows[0], "InCsumErrors");
            return long.Parse(rows[1][column]);
        }
        return (Read("Tcp"), Read("Udp"));
    }

    public void AssertNoChecksumErrors()
    {
        foreach (var ns in BackendNamespaces.Append(Client))
        {
            Assert.Equal((0L, 0L), ChecksumErrors(ns));
        }
    }

    private TestNamespace Add(TestNamespace ns)
    {
        namespaces.Add(ns);
        return ns;
    }

    private NamespaceThread AddThread(NamespaceThread thread)
    {
        threads.Add(thread);
        return thread;
    }

    public static readonly string[] BalancerInterfaces = ["lbc", "lbb1", "lbb2", "lbb3"];

    public virtual void Dispose()
    {
        foreach (var backend in Backends)
        {
            backend.Dispose();
        }
        foreach (var thread in threads)
        {
            thread.Dispose();
        }
        // Deleting the namespaces removes the veths and their XDP attachments too.
        foreach (var ns in namespaces)
        {
            ns.Dispose();
        }
    }
}
