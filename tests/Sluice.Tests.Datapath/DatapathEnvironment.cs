using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;

namespace Sluice.Tests.Datapath;

/// <summary>
/// A network namespace laid out so FIB lookups give fixed answers, with the datapath
/// loaded (unpinned) and a set of services programmed. Every MAC and neighbour is
/// static, so expected output frames are exact.
///
///   cl0 198.19.1.1/24   clients 198.19.1.10-40 (MAC ClientMac)           in tx_ports
///   be0 198.18.2.1/24   backends 198.18.2.10-20, client 198.18.2.50       in tx_ports
///                       198.18.2.99 has no neighbour entry
///   ot0 198.18.3.1/24   198.18.3.10; NOT in tx_ports
///   nf0 198.18.4.1/24   forwarding disabled on this ingress
///   198.18.50.0/24      blackhole route
/// </summary>
public sealed class DatapathEnvironment : IDisposable
{
    public static readonly byte[] Cl0Mac = [0x02, 0, 0, 0, 0x01, 0x01];
    public static readonly byte[] ClientMac = [0x02, 0, 0, 0, 0x01, 0xaa];
    public static readonly byte[] Be0Mac = [0x02, 0, 0, 0, 0x02, 0x01];
    public static readonly byte[] BackendMac = [0x02, 0, 0, 0, 0x02, 0xbb];
    public static readonly IPAddress SnatAddress = IPAddress.Parse("198.18.200.1");

    private readonly TestNamespace? netns;
    private int nextClientPort = 20000;

    public DatapathEnvironment()
        : this(new DatapathOptions { MaxServices = 1024, MaxBackends = 4096, FlowTableSize = 65536, FlowHashSeed = 7 })
    {
    }

    public DatapathEnvironment(DatapathOptions options)
    {
        if (Privileges.SkipReason is not null)
        {
            return; // the tests skip; nothing to set up
        }
        Options = options;
        netns = new TestNamespace("dp");
        try
        {
            BuildTopology(netns);
            Thread = new NamespaceThread(netns.Name);
            Thread.Run(() =>
            {
                Datapath = XdpDatapath.Load(options, NullLogger.Instance);
                Programmer = new DatapathProgrammer(Datapath);
                foreach (var name in new[] { "cl0", "be0" })
                {
                    var index = XdpDatapath.InterfaceIndex(name);
                    Datapath.TxPorts.Update(index, index);
                }
                Ifindex = new[] { "cl0", "be0", "ot0", "nf0" }.ToDictionary(n => n, XdpDatapath.InterfaceIndex);
                Programmer.SetSnatAddresses([SnatAddress]);
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public DatapathOptions Options { get; } = new();

    public NamespaceThread Thread { get; } = null!;

    public XdpDatapath Datapath { get; private set; } = null!;

    public DatapathProgrammer Programmer { get; private set; } = null!;

    public IReadOnlyDictionary<string, uint> Ifindex { get; private set; } = new Dictionary<string, uint>();

    public string NamespaceName => netns?.Name ?? "";

    /// <summary>A client port no other case uses, so every case is its own flow.</summary>
    public ushort NextClientPort() => (ushort)Interlocked.Increment(ref nextClientPort);

    public TestRunResult Send(byte[] frame, string ingress) =>
        Thread.Run(() => ProgramTestRun.Run(Datapath.ProgramFd, frame, Ifindex[ingress]));

    public ProgrammedService Apply(ServiceSpec spec) => Thread.Run(() => Programmer.Apply(spec));

    public ulong Drops(DropReason reason) => Datapath.Drops.Read((uint)reason).Aggregate(0UL, (a, b) => a + b);

    public ulong Counter(DatapathCounter counter) => Datapath.Counters.Read((uint)counter).Aggregate(0UL, (a, b) => a + b);

    private static void BuildTopology(TestNamespace ns)
    {
        var batch = new List<string>
        {
            "link add cl0 address 02:00:00:00:01:01 type veth peer name clp",
            "link add be0 address 02:00:00:00:02:01 type veth peer name bep",
            "link add ot0 address 02:00:00:00:03:01 type veth peer name otp",
            "link add nf0 address 02:00:00:00:04:01 type veth peer name nfp",
        };
        foreach (var link in new[] { "cl0", "clp", "be0", "bep", "ot0", "otp", "nf0", "nfp" })
        {
            batch.Add($"link set {link} up");
        }
        batch.Add("link set be0 mtu 1500");
        batch.Add("address add 198.19.1.1/24 dev cl0");
        batch.Add("address add 198.18.2.1/24 dev be0");
        batch.Add("address add 198.18.3.1/24 dev ot0");
        batch.Add("address add 198.18.4.1/24 dev nf0");
        for (var host = 10; host <= 40; host++)
        {
            batch.Add($"neigh add 198.19.1.{host} lladdr 02:00:00:00:01:aa dev cl0 nud permanent");
        }
        for (var host = 10; host <= 20; host++)
        {
            batch.Add($"neigh add 198.18.2.{host} lladdr 02:00:00:00:02:bb dev be0 nud permanent");
        }
        batch.Add("neigh add 198.18.2.50 lladdr 02:00:00:00:02:bb dev be0 nud permanent");
        batch.Add("neigh add 198.18.3.10 lladdr 02:00:00:00:03:cc dev ot0 nud permanent");
        batch.Add("neigh add 198.18.4.10 lladdr 02:00:00:00:04:dd dev nf0 nud permanent");
        batch.Add("route add blackhole 198.18.50.0/24");
        ns.IpBatch(batch);
        ns.Sysctl("net.ipv4.ip_forward", "1");
        ns.Sysctl("net.ipv4.conf.nf0.forwarding", "0");
    }

    public void Dispose()
    {
        if (Thread is not null)
        {
            Thread.Run(() => Datapath?.Dispose());
            Thread.Dispose();
        }
        netns?.Dispose();
    }
}
