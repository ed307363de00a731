using System.Net;
using Sluice.Datapath.Abi;
using Sluice.Datapath.Programming;
using Sluice.Datapath.Testing;
using Sluice.Testing;
using Sluice.Testing.Packets;
using static Sluice.Tests.Datapath.ProgrammedEnvironment;

namespace Sluice.Tests.Datapath;

/// <summary>
/// Thousands of random and mutated frames. Whatever comes in, the program must answer
/// one of three ways: pass it byte-identical, drop it under exactly one counted reason,
/// or rewrite it with checksums that verify exactly when the input's did. Never abort.
/// </summary>
public sealed class RandomFrameTests
{
    private const int Frames = 6000;

    private static readonly IPAddress[] Destinations =
    [
        WebFullNat.Vip, StickyDnat.Vip, UdpFullNat.Vip, IPAddress.Parse("198.18.2.10"),
        DatapathEnvironment.SnatAddress, IPAddress.Parse("198.19.1.10"),
    ];

    private static readonly ushort[] Ports = [80, 53, 5000, 8080, 5353, 1024, 40000];

    [RootFact]
    public void EveryFrameIsPassedUnchangedDroppedWithAReasonOrRewrittenWithValidChecksums()
    {
        using var env = new DatapathEnvironment();
        foreach (var spec in new[] { WebFullNat, DnsDnat, StickyDnat, UdpFullNat })
        {
            env.Apply(spec);
        }
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < Frames; i++)
        {
            var frame = Mutate(random, PacketBuilder.Build(RandomPacket(random)));
            var ingress = random.Next(4) == 0 ? "be0" : "cl0";
            var dropsBefore = TotalDrops(env);
            var result = env.Send(frame, ingress);
            var context = $"seed {seed}, frame {i} via {ingress}: {Convert.ToHexString(frame)}";
            var rewritten = !result.Output.AsSpan().SequenceEqual(frame);

            switch (result.Action)
            {
                case XdpAction.Drop:
                    Assert.True(TotalDrops(env) == dropsBefore + 1, $"a drop must be counted under one reason; {context}");
                    Tally(outcomes, "drop");
                    break;
                case XdpAction.Pass when !rewritten:
                    Tally(outcomes, "pass unchanged");
                    break;
                case XdpAction.Pass or XdpAction.Tx or XdpAction.Redirect:
                    Assert.Equal(frame.Length, result.Output.Length);
                    Assert.True(FrameChecks.ChecksumsValid(result.Output) == FrameChecks.ChecksumsValid(frame),
                        $"a rewrite must keep checksums exactly as valid as they came; {context}");
                    Tally(outcomes, "rewritten");
                    break;
                default:
                    Assert.Fail($"verdict {result.Action}; {context}");
                    break;
            }
        }
        // The generator must reach all three outcomes, or it tests less than it claims.
        Assert.True(outcomes.GetValueOrDefault("drop") > 100, string.Join(", ", outcomes));
        Assert.True(outcomes.GetValueOrDefault("pass unchanged") > 100, string.Join(", ", outcomes));
        Assert.True(outcomes.GetValueOrDefault("rewritten") > 100, string.Join(", ", outcomes));
    }

    private static void Tally(Dictionary<string, int> outcomes, string outcome) =>
        outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;

    private static ulong TotalDrops(DatapathEnvironment env) =>
        Enum.GetValues<DropReason>().Aggregate(0UL, (sum, reason) => sum + env.Drops(reason));

    private static readonly ServiceSpec[] Services = [WebFullNat, DnsDnat, StickyDnat, UdpFullNat];

    private static PacketSpec RandomPacket(Random random)
    {
        var packet = AnyPacket(random);
        if (random.Next(2) == 0)
        {
            // Half of the frames aim at a real service, so the rewrite paths get real coverage.
            var service = Services[random.Next(Services.Length)];
            packet = packet with { Destination = service.Vip, DestinationPort = service.Port, Protocol = (byte)service.Protocol };
        }
        return packet;
    }

    private static PacketSpec AnyPacket(Random random)
    {
        var protocol = random.Next(10) switch { < 5 => PacketBuilder.Tcp, < 9 => PacketBuilder.Udp, _ => PacketBuilder.Icmp };
        return new PacketSpec
        {
            SourceMac = DatapathEnvironment.ClientMac,
            DestinationMac = DatapathEnvironment.Cl0Mac,
            Source = IPAddress.Parse(random.Next(3) == 0 ? $"198.18.2.{10 + random.Next(8)}" : $"198.19.1.{10 + random.Next(30)}"),
            Destination = Destinations[random.Next(Destinations.Length)],
            Protocol = protocol,
            Ttl = (byte)random.Next(0, 3) switch { 0 => (byte)random.Next(0, 3), _ => (byte)64 },
            FlagsAndOffset = random.Next(8) == 0 ? (ushort)random.Next(0x10000) : (ushort)0x4000,
            IpOptions = random.Next(6) == 0 ? Enumerable.Repeat((byte)1, 4 * random.Next(1, 11)).ToArray() : [],
            SourcePort = random.Next(2) == 0 ? Ports[random.Next(Ports.Length)] : (ushort)random.Next(1, 65536),
            DestinationPort = random.Next(4) != 0 ? Ports[random.Next(Ports.Length)] : (ushort)random.Next(1, 65536),
            TcpFlags = (byte)random.Next(256),
            UdpNoChecksum = random.Next(4) == 0,
            VlanTags = random.Next(8) == 0 ? [(ushort)random.Next(4096)] : [],
            Payload = new byte[random.Next(0, 64)],
            TrailingPadding = random.Next(6) == 0 ? random.Next(1, 20) : 0,
        };
    }

    private static byte[] Mutate(Random random, byte[] frame)
    {
        switch (random.Next(6))
        {
            case 0: // a few flipped bytes anywhere
                for (var flips = random.Next(1, 4); flips > 0; flips--)
                {
                    frame[random.Next(frame.Length)] ^= (byte)random.Next(1, 256);
                }
                return frame;
            case 1: // cut short
                return frame[..random.Next(14, frame.Length + 1)];
            case 2: // a flipped byte inside the IPv4 header
                var ip = FrameChecks.Ipv4Offset(frame);
                if (ip > 0) frame[ip + random.Next(20)] ^= (byte)random.Next(1, 256);
                return frame;
            case 3: // garbage behind an IPv4 ethertype
                var garbage = new byte[random.Next(14, 200)];
                random.NextBytes(garbage);
                garbage[12] = 0x08;
                garbage[13] = 0x00;
                return garbage;
            default: // well-formed
                return frame;
        }
    }
}
