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
///   VLAN 100 on cl0: 198.19.100.1/24, clients 198.19.100.10-20 (ClientMac)
///   VLAN 200 on be0: 198.18.20.1/24, backends 198.18.20.10-20 (BackendMac)
///   VLAN 300 on ot0 (not attached): 198.18.30.1/24, 198.18.30.10
///
/// This kernel has no 802.1Q (CONFIG_VLAN_8021Q unset, no modules), so each VLAN sub-interface
/// is stood in for by a plain interface (vl100, vl200, vl300, with its parent's MAC, as a VLAN
/// device has) listed in the VLAN map as the datapath's loader would list the real one. The
/// datapath knows sub-interfaces only by ifindex, so what it does is what it does with real ones.
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
                    Datapath.RegisterTxPort(name);
                }
                Ifindex = new[] { "cl0", "be0", "ot0", "nf0", "vl100", "vl200", "vl300" }.ToDictionary(n => n, XdpDatapath.InterfaceIndex);
                foreach (var (parent, sub, id) in new[] { ("cl0", "vl100", 100), ("be0", "vl200", 200), ("ot0", "vl300", 300) })
                {
                    Datapath.Vlans.Update(new VlanPort(Ifindex[parent], (ushort)id), new VlanPort(Ifindex[sub], 0));
                    Datapath.Vlans.Update(new VlanPort(Ifindex[sub], 0), new VlanPort(Ifindex[parent], (ushort)id));
                }
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

    /// <summary>`ip -batch` in the environment's namespace (change its links, routes, neighbours).</summary>
    public void IpBatch(IEnumerable<string> commands) => netns!.IpBatch(commands);

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
        foreach (var (mac, id, subnet) in new[] { ("02:00:00:00:01:01", 100, "198.19.100"), ("02:00:00:00:02:01", 200, "198.18.20"), ("02:00:00:00:03:01", 300, "198.18.30") })
        {
            batch.Add($"link add vl{id} address {mac} type veth peer name vl{id}p");
            batch.Add($"link set vl{id} up");
            batch.Add($"link set vl{id}p up");
            batch.Add($"address add {subnet}.1/24 dev vl{id}");
        }
        for (var host = 10; host <= 20; host++)
        {
            batch.Add($"neigh add 198.19.100.{host} lladdr 02:00:00:00:01:aa dev vl100 nud permanent");
            batch.Add($"neigh add 198.18.20.{host} lladdr 02:00:00:00:02:bb dev vl200 nud permanent");
        }
        batch.Add("neigh add 198.18.30.10 lladdr 02:00:00:00:03:cc dev vl300 nud permanent");
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
