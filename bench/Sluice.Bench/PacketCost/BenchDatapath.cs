using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Loading;
using Sluice.Datapath.Maps;
using Sluice.Datapath.Testing;
using Sluice.Testing.Packets;
using Sluice.Datapath.Programming;
using Sluice.Testing;

namespace Sluice.Bench.PacketCost;

/// <summary>
/// The benchmark object (bench/bpf/sluice_bench.c: Sluice behind a header-restoring
/// wrapper, plus the floors) loaded in a private namespace whose neighbours are static,
/// so bpf_fib_lookup answers and every run ends in a redirect like real forwarding.
/// </summary>
public sealed class BenchDatapath : IDisposable
{
    public static readonly IPAddress SnatAddress = IPAddress.Parse("198.18.200.1");
    private readonly TestNamespace netns;

    public BenchDatapath(uint maxServices, uint flowTableSize)
    {
        netns = new TestNamespace("bench");
        try
        {
            var batch = new List<string>
            {
                "link add cl0 address 02:00:00:00:01:01 type veth peer name clp",
                "link add be0 address 02:00:00:00:02:01 type veth peer name bep",
                "link set cl0 up", "link set clp up", "link set be0 up", "link set bep up",
                "address add 198.19.0.1/16 dev cl0",
                "address add 198.18.2.1/24 dev be0",
            };
            for (var host = 10; host < 20; host++)
            {
                batch.Add($"neigh add 198.18.2.{host} lladdr 02:00:00:00:02:bb dev be0 nud permanent");
            }
            netns.IpBatch(batch);
            netns.Sysctl("net.ipv4.ip_forward", "1");
            Thread = new NamespaceThread(netns.Name);
            Thread.Run(() =>
            {
                Datapath = XdpDatapath.Load(new DatapathOptions
                {
                    ObjectPath = Path.Combine(AppContext.BaseDirectory, "bpf", "sluice_bench.o"),
                    PinPath = null,
                    MaxServices = maxServices,
                    MaxBackends = maxServices + 64,
                    FlowTableSize = flowTableSize,
                    // Benchmark SYNs never finish a handshake: let them use the whole table.
                    HandshakeLimit = flowTableSize,
                    FlowHashSeed = 7,
                }, NullLogger.Instance);
                Programmer = new DatapathProgrammer(Datapath);
                // Four SNAT addresses: 2.6 million ports for ten backends, so a million cold
                // fullnat connections fill 40% of them (as the v2 benchmark's evicting tables did).
                Programmer.SetSnatAddresses([SnatAddress, .. Enumerable.Range(2, 3).Select(i => IPAddress.Parse($"198.18.200.{i}"))]);
                foreach (var name in new[] { "cl0", "be0" })
                {
                    var index = XdpDatapath.InterfaceIndex(name);
                    Datapath.TxPorts.Update(index, index);
                }
                ClientInterface = XdpDatapath.InterfaceIndex("cl0");
                BackendInterface = XdpDatapath.InterfaceIndex("be0");
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public NamespaceThread Thread { get; } = null!;

    public XdpDatapath Datapath { get; private set; } = null!;

    public DatapathProgrammer Programmer { get; private set; } = null!;

    public uint ClientInterface { get; private set; }

    public uint BackendInterface { get; private set; }

    /// <summary>Empties both connection tables and the handshake budget (between cold rounds).</summary>
    public void ClearConnections()
    {
        Datapath.Flows.DeleteAll(Datapath.Flows.ReadAll().Select(e => e.Key).ToList());
        Datapath.Nat.Clear();
        Datapath.Handshakes.Update((uint)HandshakeCounter.Datapath, 0);
        Datapath.Handshakes.Update((uint)HandshakeCounter.Swept, 0);
    }

    /// <summary>
    /// Opens a connection with <paramref name="syn"/> and proves its handshake (the backend's
    /// SYN-ACK, the client's ACK of it), so timed packets take the established path.
    /// </summary>
    public void Establish(byte[] syn, BpfMap<uint, BenchFrame> frameMap)
    {
        PacketCostBench.SetFrame(frameMap, syn, vary: false);
        ProgramTestRun.Run(Datapath.ProgramFd, syn, ClientInterface);
        var client = WireView.Of(syn);
        var key = new Tuple5(Be32.From(client.Source), Be32.From(client.Destination), Be16.FromHost(client.SourcePort), Be16.FromHost(client.DestinationPort), PacketBuilder.Tcp);
        if (!Datapath.Flows.TryLookup(key, out var flow))
        {
            throw new InvalidOperationException("the SYN opened no connection");
        }
        var fullNat = flow.Mode == ServiceMode.FullNat;
        var plain = Datapath.FindProgramFd("bench_plain");
        var synAck = PacketBuilder.Build(new PacketSpec
        {
            SourceMac = [0x02, 0, 0, 0, 0x02, 0xbb], DestinationMac = [0x02, 0, 0, 0, 0x02, 0x01],
            Source = flow.BackendAddress.ToIPAddress(), SourcePort = flow.BackendPort.ToHost(),
            Destination = fullNat ? flow.SnatAddress.ToIPAddress() : client.Source,
            DestinationPort = fullNat ? flow.SnatPort.ToHost() : client.SourcePort,
            TcpFlags = 0x12, TcpSequence = 5000, TcpAcknowledgement = client.Sequence + 1,
        });
        ProgramTestRun.Run(plain, synAck, BackendInterface);
        var ack = PacketBuilder.Build(new PacketSpec
        {
            SourceMac = [0x02, 0, 0, 0, 0x01, 0xaa], DestinationMac = [0x02, 0, 0, 0, 0x01, 0x01],
            Source = client.Source, SourcePort = client.SourcePort, Destination = client.Destination, DestinationPort = client.DestinationPort,
            TcpFlags = 0x10, TcpSequence = client.Sequence + 1, TcpAcknowledgement = 5001,
        });
        ProgramTestRun.Run(plain, ack, ClientInterface);
        if (!Datapath.Flows.TryLookup(key, out flow) || !flow.Flags.HasFlag(ConnectionFlags.Established))
        {
            throw new InvalidOperationException("the connection's handshake was not proven");
        }
    }

    /// <summary>Fills both connection tables with UDP connections (outside the handshake budget).</summary>
    public void FillConnections(byte[] udp, BpfMap<uint, BenchFrame> frameMap)
    {
        PacketCostBench.SetFrame(frameMap, udp, vary: true);
        ProgramTestRun.Run(Datapath.ProgramFd, udp, ClientInterface, (int)Datapath.Options.FlowTableSize + 10_000);
    }

    public void Dispose()
    {
        Thread?.Run(() => Datapath?.Dispose());
        Thread?.Dispose();
        netns.Dispose();
    }
}
