using System.Net;
using Sluice.Datapath.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.Datapath;

/// <summary>
/// One client's connection through the datapath under test, packet by packet: what the
/// client sends to the VIP, what the backend saw, and the backend's answers sent back
/// to the address and port it saw them from.
/// </summary>
public sealed class Conversation(DatapathEnvironment env, IPAddress client, ushort clientPort, IPAddress vip, ushort vipPort, byte protocol = PacketBuilder.Tcp)
{
    public const uint ClientIsn = 1000;
    public const uint BackendIsn = 700_000;

    public IPAddress Client { get; } = client;
    public ushort ClientPort { get; } = clientPort;

    /// <summary>The last client packet as the backend received it (its source is the SNAT binding).</summary>
    public WireView? Upstream { get; private set; }

    private uint sent;

    public PacketSpec FromClient(byte tcpFlags, uint ack = 0, byte[]? payload = null) => new()
    {
        SourceMac = DatapathEnvironment.ClientMac,
        DestinationMac = DatapathEnvironment.Cl0Mac,
        Source = Client,
        Destination = vip,
        Protocol = protocol,
        SourcePort = ClientPort,
        DestinationPort = vipPort,
        TcpFlags = tcpFlags,
        TcpSequence = (tcpFlags & Tcp.Syn) != 0 ? ClientIsn : ClientIsn + 1 + sent,
        TcpAcknowledgement = ack,
        Payload = payload ?? [],
    };

    public TestRunResult Send(byte tcpFlags, uint ack = 0, byte[]? payload = null)
    {
        var result = env.Send(PacketBuilder.Build(FromClient(tcpFlags, ack, payload)), "cl0");
        sent += (uint)(payload?.Length ?? 0);
        if (result.Action is XdpAction.Redirect or XdpAction.Tx)
        {
            Upstream = WireView.Of(result.Output);
        }
        return result;
    }

    /// <summary>A packet from the backend to where it saw this client's traffic come from.</summary>
    public TestRunResult Reply(byte tcpFlags, byte[]? payload = null)
    {
        var seen = Upstream ?? throw new InvalidOperationException("nothing reached a backend yet");
        return env.Send(PacketBuilder.Build(new PacketSpec
        {
            SourceMac = DatapathEnvironment.BackendMac,
            DestinationMac = DatapathEnvironment.Be0Mac,
            Source = seen.Destination,
            Destination = seen.Source,
            Protocol = protocol,
            SourcePort = seen.DestinationPort,
            DestinationPort = seen.SourcePort,
            TcpFlags = tcpFlags,
            TcpSequence = BackendIsn,
            TcpAcknowledgement = ClientIsn + 1,
            Payload = payload ?? [],
        }), "be0");
    }

    /// <summary>SYN, SYN-ACK, ACK: returns false if any step was not forwarded.</summary>
    public bool Handshake() =>
        Send(Tcp.Syn).Action == XdpAction.Redirect &&
        Reply(Tcp.Syn | Tcp.Ack).Action == XdpAction.Redirect &&
        Send(Tcp.Ack, BackendIsn + 1).Action == XdpAction.Redirect;

    /// <summary>True if the frame left as this client's reply: from VIP:port to the client.</summary>
    public bool IsForMe(TestRunResult result)
    {
        if (result.Action is not (XdpAction.Redirect or XdpAction.Tx))
        {
            return false;
        }
        var wire = WireView.Of(result.Output);
        return wire.Destination.Equals(Client) && wire.DestinationPort == ClientPort && wire.Source.Equals(vip) && wire.SourcePort == vipPort;
    }

    public static class Tcp
    {
        public const byte Fin = 0x01;
        public const byte Syn = 0x02;
        public const byte Rst = 0x04;
        public const byte Psh = 0x08;
        public const byte Ack = 0x10;
    }
}
