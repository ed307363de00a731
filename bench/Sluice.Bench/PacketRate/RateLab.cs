using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Bench.PacketCost;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Maps;
using Sluice.Testing;

namespace Sluice.Bench.PacketRate;

/// <summary>
/// generator (g0) → (lbg) balancer (lbs) → (s0) sink, three namespaces on 198.18.0.0/15.
/// The generator is the benchmark object's restore-and-XDP_TX program run in live-frames
/// mode on g0; the sink an XDP program that counts and drops on s0. Neighbours are static
/// (the sink answers no ARP).
/// </summary>
public sealed class RateLab : IDisposable
{
    public const string GeneratorMac = "02:00:00:00:30:02", BalancerInMac = "02:00:00:00:30:01";
    public const string BalancerOutMac = "02:00:00:00:31:01", SinkMac = "02:00:00:00:31:02";
    private readonly List<TestNamespace> namespaces = [];

    public RateLab()
    {
        try
        {
            Generator = Add("rgen");
            Balancer = Add("rlb");
            Sink = Add("rsink");
            Balancer.IpBatch([
                $"link add lbg address {BalancerInMac} type veth peer name g0 address {GeneratorMac} netns {Generator.Name}",
                $"link add lbs address {BalancerOutMac} type veth peer name s0 address {SinkMac} netns {Sink.Name}",
                "link set lbg up", "link set lbs up", "link set lo up",
                "address add 198.19.30.1/24 dev lbg", "address add 198.18.31.1/24 dev lbs",
                $"neigh add 198.18.31.2 lladdr {SinkMac} dev lbs nud permanent",
            ]);
            Generator.IpBatch(["link set g0 up", "link set lo up", "address add 198.19.30.2/24 dev g0"]);
            Sink.IpBatch(["link set s0 up", "link set lo up", "address add 198.18.31.2/24 dev s0"]);
            Balancer.Sysctl("net.ipv4.ip_forward", "1");
            Balancer.Sysctl("net.ipv4.conf.all.rp_filter", "0");
            Balancer.Sysctl("net.ipv4.conf.lbg.rp_filter", "0");
            GeneratorThread = new NamespaceThread(Generator.Name);
            BalancerThread = new NamespaceThread(Balancer.Name);
            SinkThread = new NamespaceThread(Sink.Name);
            // One load of the benchmark object: the generator, the sink, pass and forward-only programs.
            Bench = GeneratorThread.Run(() => XdpDatapath.Load(new DatapathOptions
            {
                ObjectPath = Path.Combine(AppContext.BaseDirectory, "bpf", "sluice_bench.o"),
                MaxServices = 64, MaxBackends = 256, FlowTableSize = 1024,
            }, NullLogger.Instance));
            GeneratorIfindex = GeneratorThread.Run(() => XdpDatapath.InterfaceIndex("g0"));
            SinkThread.Run(() => Bench.AttachProgram("bench_sink", "s0"));
            Frame = new BpfMap<uint, BenchFrame>("sluice_b.bss", Bench.FindMapFd("sluice_b.bss"));
            SinkCount = new PerCpuArray<ulong>("sluice_bench_sink", Bench.FindMapFd("sluice_bench_sink"));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNamespace Generator { get; } = null!;
    public TestNamespace Balancer { get; } = null!;
    public TestNamespace Sink { get; } = null!;
    public NamespaceThread GeneratorThread { get; } = null!;
    public NamespaceThread BalancerThread { get; } = null!;
    public NamespaceThread SinkThread { get; } = null!;
    public XdpDatapath Bench { get; } = null!;
    public uint GeneratorIfindex { get; }
    public BpfMap<uint, BenchFrame> Frame { get; } = null!;
    public PerCpuArray<ulong> SinkCount { get; } = null!;

    public ulong Sunk() => SinkCount.Read(0).Aggregate(0UL, (a, b) => a + b);

    /// <summary>Removes every XDP program from the balancer's interfaces.</summary>
    public void ClearBalancer() => BalancerThread.Run(() =>
    {
        XdpDatapath.Detach("lbg");
        XdpDatapath.Detach("lbs");
    });

    private TestNamespace Add(string role)
    {
        var ns = new TestNamespace(role);
        namespaces.Add(ns);
        return ns;
    }

    public void Dispose()
    {
        GeneratorThread?.Run(() => Bench?.Dispose());
        foreach (var thread in new[] { GeneratorThread, BalancerThread, SinkThread })
        {
            thread?.Dispose();
        }
        foreach (var ns in namespaces)
        {
            ns.Dispose();
        }
    }
}
