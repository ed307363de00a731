using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;
using static Sluice.Tests.Datapath.DatapathEnvironment;

namespace Sluice.Tests.Datapath;

/// <summary>
/// Each CPU reuses a backend's next hop (egress, MACs, tag, a length the FIB accepted) for
/// SLUICE_NEXT_HOP_TTL_NS: that is the stated bound on how late an MTU, route or neighbour
/// change takes effect. These wait the bound out and check the change took effect.
/// </summary>
public sealed class NextHopCacheTests
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMilliseconds(NextHop.TtlNs / 1_000_000.0);

    [RootFact]
    public void ALowerMtuIsAnsweredWithFragmentationNeededWithinTheLifetime()
    {
        using var fixture = new ProgrammedEnvironment();
        var env = fixture.Env;
        var packet = Syn(env, payload: 1300);
        Assert.Equal(IPAddress.Parse("198.18.200.1"), SourceOf(Forwarded(env, packet)));

        env.IpBatch(["link set be0 mtu 1280"]);
        Thread.Sleep(Lifetime + TimeSpan.FromMilliseconds(100)); // the bound itself is what is tested

        var answer = env.Send(PacketBuilder.Build(packet), "cl0");
        Assert.Equal(XdpAction.Redirect, answer.Action);
        var ip = FrameChecks.Ipv4Offset(answer.Output);
        Assert.Equal(PacketBuilder.Icmp, answer.Output[ip + 9]);
        Assert.Equal((3, 4), (answer.Output[ip + 20], answer.Output[ip + 21])); // fragmentation needed
        Assert.Equal(1280, (answer.Output[ip + 26] << 8) | answer.Output[ip + 27]);
    }

    [RootFact]
    public void ARouteChangeMovesABackendsPacketsWithinTheLifetime()
    {
        using var fixture = new ProgrammedEnvironment();
        var env = fixture.Env;
        var packet = Syn(env, payload: 10);
        Assert.Empty(VlanTagsOf(Forwarded(env, packet)));

        // Every backend of the service is routed into VLAN 200 (be0's sub-interface) instead.
        var batch = new List<string>();
        foreach (var backend in ProgrammedEnvironment.WebFullNat.Backends)
        {
            batch.Add($"route add {backend.Address}/32 dev vl200");
            batch.Add($"neigh add {backend.Address} lladdr 02:00:00:00:02:bb dev vl200 nud permanent");
        }
        env.IpBatch(batch);
        Thread.Sleep(Lifetime + TimeSpan.FromMilliseconds(100));

        Assert.Equal([(ushort)200], VlanTagsOf(Forwarded(env, packet)));
    }

    private static PacketSpec Syn(DatapathEnvironment env, int payload) => new()
    {
        SourceMac = ClientMac, DestinationMac = Cl0Mac, Source = IPAddress.Parse("198.19.1.20"),
        Destination = ProgrammedEnvironment.WebFullNat.Vip, Protocol = PacketBuilder.Tcp,
        SourcePort = env.NextClientPort(), DestinationPort = 80, Payload = new byte[payload],
    };

    private static byte[] Forwarded(DatapathEnvironment env, PacketSpec packet)
    {
        var result = env.Send(PacketBuilder.Build(packet), "cl0");
        Assert.Equal(XdpAction.Redirect, result.Action);
        Assert.Equal(PacketBuilder.Tcp, result.Output[FrameChecks.Ipv4Offset(result.Output) + 9]);
        return result.Output;
    }

    private static IPAddress SourceOf(byte[] frame) => new(frame.AsSpan(FrameChecks.Ipv4Offset(frame) + 12, 4));

    private static List<ushort> VlanTagsOf(byte[] frame)
    {
        var tags = new List<ushort>();
        for (var offset = 12; frame[offset] == 0x81 && frame[offset + 1] == 0x00; offset += 4)
        {
            tags.Add((ushort)(((frame[offset + 2] << 8) | frame[offset + 3]) & 0x0fff));
        }
        return tags;
    }
}
