using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;
using Sluice.Datapath.Interop;

namespace Sluice.Datapath.Neighbours;

/// <summary>Where the kernel routes an address: out of <c>Ifindex</c> to <c>NextHop</c> (the
/// address itself when directly connected, else the gateway).</summary>
public sealed record Route(uint Ifindex, IPAddress NextHop, bool ViaGateway);

/// <summary>A neighbour entry as the kernel holds it (NUD_* state, NTF_EXT_MANAGED, its protocol tag).</summary>
public sealed record Neighbour(uint Ifindex, IPAddress Address, ushort State, bool Managed, byte Protocol)
{
    public const ushort Incomplete = 0x01, Reachable = 0x02, Stale = 0x04, Delay = 0x08, Probe = 0x10, Failed = 0x20, NoArp = 0x40, Permanent = 0x80;

    /// <summary>Has a link-layer address the FIB lookup can use (what bpf_fib_lookup needs).</summary>
    public bool Resolved => (State & (Reachable | Stale | Delay | Probe | Permanent | NoArp)) != 0;

    public string StateName => State switch
    {
        0 => "none",
        Incomplete => "incomplete",
        Reachable => "reachable",
        Stale => "stale",
        Delay => "delay",
        Probe => "probe",
        Failed => "failed",
        NoArp => "noarp",
        Permanent => "permanent",
        _ => $"0x{State:x}",
    };
}

/// <summary>A network interface as rtnetlink lists it; <c>VlanId</c> is set for an 802.1Q VLAN
/// sub-interface of <c>Parent</c> (in this namespace).</summary>
public sealed record Link(uint Ifindex, string Name, uint Parent, ushort? VlanId);

/// <summary>A route lookup that found no usable unicast route.</summary>
public sealed class NoRouteException(string message) : Exception(message);

/// <summary>
/// The few rtnetlink requests Sluice needs (no .NET library speaks netlink): a route lookup,
/// kernel-managed neighbour entries (NTF_EXT_MANAGED, kernel 5.16+: the kernel resolves them
/// and keeps them resolved, as Cilium uses them for its backends' next hops), their removal, and a
/// dump of the IPv4 neighbour table. Runs in the network namespace of the calling thread's
/// process. Not thread-safe: one request at a time.
/// </summary>
public sealed class RouteNetlink : IDisposable
{
    private const int AfNetlink = 16, AfInet = 2, SockRaw = 3, SockCloexec = 0x80000, NetlinkRoute = 0;
    private const ushort NlmsgError = 2, NlmsgDone = 3;
    private const ushort RtmNewLink = 16, RtmGetLink = 18;
    private const ushort IflaIfname = 3, IflaLink = 5, IflaLinkinfo = 18, IflaLinkNetnsid = 37, IflaInfoKind = 1, IflaInfoData = 2, IflaVlanId = 1, IflaVlanProtocol = 5;
    private const ushort RtmNewRoute = 24, RtmGetRoute = 26, RtmNewNeigh = 28, RtmDelNeigh = 29, RtmGetNeigh = 30;
    private const ushort FlagRequest = 0x1, FlagAck = 0x4, FlagDump = 0x300, FlagReplace = 0x100, FlagCreate = 0x400;
    private const ushort RtaDst = 1, RtaOif = 4, RtaGateway = 5;
    private const ushort NdaDst = 1, NdaProtocol = 12, NdaFlagsExt = 15;
    private const byte RtnUnicast = 1;
    private const byte NtfExtLearned = 0x10;
    private const uint NtfExtManaged = 0x1;
    private const int HeaderLength = 16;

    private readonly FileDescriptorHandle socket;
    private readonly byte[] buffer = new byte[64 * 1024];
    private uint sequence;

    public RouteNetlink()
    {
        var fd = Libc.Socket(AfNetlink, SockRaw | SockCloexec, NetlinkRoute);
        if (fd < 0)
        {
            throw new BpfException("open a netlink socket", Marshal.GetLastPInvokeError());
        }
        socket = new FileDescriptorHandle(fd);
    }

    /// <summary>The route the kernel would use to reach <paramref name="address"/>.</summary>
    /// <exception cref="NoRouteException">No route, or not a unicast one (local, blackhole, unreachable...).</exception>
    public Route LookupRoute(IPAddress address)
    {
        var request = new Message(RtmGetRoute, FlagRequest, ++sequence);
        request.Body([AfInet, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // struct rtmsg: family, dst_len 32
        request.Attribute(RtaDst, address.GetAddressBytes());
        Route? found = null;
        var error = Exchange(request, (type, payload) =>
        {
            if (type != RtmNewRoute)
            {
                return;
            }
            var routeType = payload[7];
            if (routeType != RtnUnicast)
            {
                throw new NoRouteException($"{address} is routed as {RouteTypeName(routeType)}, not to a neighbour");
            }
            uint oif = 0;
            IPAddress? gateway = null;
            foreach (var (attribute, value) in Attributes(payload[12..]))
            {
                if (attribute == RtaOif)
                {
                    oif = BinaryPrimitives.ReadUInt32LittleEndian(value);
                }
                else if (attribute == RtaGateway && value.Length == 4)
                {
                    gateway = new IPAddress(value);
                }
            }
            found = new Route(oif, gateway ?? address, gateway is not null);
        });
        if (error != 0)
        {
            throw new NoRouteException($"no route to {address}: {Marshal.GetPInvokeErrorMessage(-error)}");
        }
        return found ?? throw new NoRouteException($"no route to {address}");
    }

    /// <summary>Creates or replaces a kernel-managed neighbour entry, tagged with <paramref name="protocol"/>.</summary>
    public void SetManagedNeighbour(uint ifindex, IPAddress address, byte protocol)
    {
        var request = new Message(RtmNewNeigh, FlagRequest | FlagAck | FlagReplace | FlagCreate, ++sequence);
        request.Body(NeighbourHeader(ifindex, state: 0, NtfExtLearned));
        request.Attribute(NdaDst, address.GetAddressBytes());
        request.Attribute(NdaFlagsExt, BitConverter.GetBytes(NtfExtManaged));
        request.Attribute(NdaProtocol, [protocol]);
        ThrowOnError(Exchange(request, null), $"add a managed neighbour entry for {address}");
    }

    /// <summary>Deletes a neighbour entry; false if there was none.</summary>
    public bool DeleteNeighbour(uint ifindex, IPAddress address)
    {
        var request = new Message(RtmDelNeigh, FlagRequest | FlagAck, ++sequence);
        request.Body(NeighbourHeader(ifindex, state: 0, flags: 0));
        request.Attribute(NdaDst, address.GetAddressBytes());
        var error = Exchange(request, null);
        if (error == -2) // ENOENT
        {
            return false;
        }
        ThrowOnError(error, $"delete the neighbour entry of {address}");
        return true;
    }

    /// <summary>Every IPv4 neighbour entry of this namespace.</summary>
    public List<Neighbour> Neighbours()
    {
        var request = new Message(RtmGetNeigh, FlagRequest | FlagDump, ++sequence);
        request.Body(NeighbourHeader(0, 0, 0));
        var list = new List<Neighbour>();
        ThrowOnError(Exchange(request, (type, payload) =>
        {
            if (type != RtmNewNeigh || payload.Length < 12 || payload[0] != AfInet)
            {
                return;
            }
            var ifindex = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
            var state = BinaryPrimitives.ReadUInt16LittleEndian(payload[8..]);
            IPAddress? address = null;
            var managed = false;
            byte protocol = 0;
            foreach (var (attribute, value) in Attributes(payload[12..]))
            {
                switch (attribute)
                {
                    case NdaDst when value.Length == 4:
                        address = new IPAddress(value);
                        break;
                    case NdaFlagsExt when value.Length >= 4:
                        managed = (BinaryPrimitives.ReadUInt32LittleEndian(value) & NtfExtManaged) != 0;
                        break;
                    case NdaProtocol when value.Length >= 1:
                        protocol = value[0];
                        break;
                }
            }
            if (address is not null)
            {
                list.Add(new Neighbour(ifindex, address, state, managed, protocol));
            }
        }), "dump the neighbour table");
        return list;
    }

    /// <summary>Every interface of this namespace; 802.1Q VLAN sub-interfaces with their id and parent.</summary>
    public List<Link> Links()
    {
        var request = new Message(RtmGetLink, FlagRequest | FlagDump, ++sequence);
        request.Body(new byte[16]); // struct ifinfomsg, AF_UNSPEC
        var list = new List<Link>();
        ThrowOnError(Exchange(request, (type, payload) =>
        {
            if (type != RtmNewLink || payload.Length < 16)
            {
                return;
            }
            var ifindex = BinaryPrimitives.ReadUInt32LittleEndian(payload.AsSpan(4));
            string name = "";
            uint parent = 0;
            var parentElsewhere = false;
            string? kind = null;
            ushort? vlanId = null;
            ushort vlanProtocol = 0x8100;
            foreach (var (attribute, value) in Attributes(payload[16..]))
            {
                switch (attribute)
                {
                    case IflaIfname:
                        name = System.Text.Encoding.ASCII.GetString(value).TrimEnd('\0');
                        break;
                    case IflaLink when value.Length >= 4:
                        parent = BinaryPrimitives.ReadUInt32LittleEndian(value);
                        break;
                    case IflaLinkNetnsid:
                        parentElsewhere = true;
                        break;
                    case IflaLinkinfo:
                        foreach (var (info, infoValue) in Attributes(value))
                        {
                            if (info == IflaInfoKind)
                            {
                                kind = System.Text.Encoding.ASCII.GetString(infoValue).TrimEnd('\0');
                            }
                            else if (info == IflaInfoData)
                            {
                                foreach (var (vlan, vlanValue) in Attributes(infoValue))
                                {
                                    if (vlan == IflaVlanId && vlanValue.Length >= 2)
                                    {
                                        vlanId = BinaryPrimitives.ReadUInt16LittleEndian(vlanValue);
                                    }
                                    else if (vlan == IflaVlanProtocol && vlanValue.Length >= 2)
                                    {
                                        vlanProtocol = BinaryPrimitives.ReadUInt16BigEndian(vlanValue);
                                    }
                                }
                            }
                        }
                        break;
                }
            }
            var isDot1qVlan = kind == "vlan" && vlanId is not null && vlanProtocol == 0x8100 && !parentElsewhere;
            list.Add(new Link(ifindex, name, isDot1qVlan ? parent : 0, isDot1qVlan ? vlanId : null));
        }), "list the network interfaces");
        return list;
    }

    public void Dispose() => socket.Dispose();

    private static byte[] NeighbourHeader(uint ifindex, ushort state, byte flags)
    {
        var header = new byte[12]; // struct ndmsg
        header[0] = AfInet;
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), ifindex);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), state);
        header[10] = flags;
        return header;
    }

    private static void ThrowOnError(int error, string what)
    {
        if (error != 0)
        {
            throw new BpfException(what, -error);
        }
    }

    private static string RouteTypeName(byte type) => type switch
    {
        2 => "local",
        3 => "broadcast",
        6 => "blackhole",
        7 => "unreachable",
        8 => "prohibit",
        _ => $"route type {type}",
    };

    /// <summary>Sends one request and reads until its answer ends: an error/ack (returns -errno or 0)
    /// or, for a dump, NLMSG_DONE. Every other message of the request goes to <paramref name="each"/>.</summary>
    private unsafe int Exchange(Message request, Action<ushort, byte[]>? each)
    {
        var bytes = request.ToArray();
        fixed (byte* data = bytes)
        {
            if (Libc.Send(socket.Fd, data, (nuint)bytes.Length, 0) < 0)
            {
                throw new BpfException("netlink send", Marshal.GetLastPInvokeError());
            }
        }
        var answeredByMessage = (request.Flags & FlagAck) == 0 && (request.Flags & FlagDump) != FlagDump;
        while (true)
        {
            long received;
            fixed (byte* data = buffer)
            {
                received = Libc.Recv(socket.Fd, data, (nuint)buffer.Length, 0);
            }
            if (received < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == 4) // EINTR
                {
                    continue;
                }
                throw new BpfException("netlink receive", errno);
            }
            var offset = 0;
            while (offset + HeaderLength <= received)
            {
                var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset));
                var type = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(offset + 4));
                var seq = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset + 8));
                if (length < HeaderLength || offset + length > received)
                {
                    throw new InvalidOperationException("malformed netlink message");
                }
                var payload = buffer.AsSpan(offset + HeaderLength, length - HeaderLength).ToArray();
                offset += (length + 3) & ~3;
                if (seq != request.Sequence)
                {
                    continue; // an answer to an earlier request we gave up on
                }
                if (type == NlmsgError)
                {
                    return BinaryPrimitives.ReadInt32LittleEndian(payload);
                }
                if (type == NlmsgDone)
                {
                    return 0;
                }
                each?.Invoke(type, payload);
                if (answeredByMessage)
                {
                    return 0;
                }
            }
        }
    }

    private static IEnumerable<(ushort Type, byte[] Value)> Attributes(byte[] data)
    {
        var offset = 0;
        while (offset + 4 <= data.Length)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset));
            var type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset + 2)) & 0x3fff);
            if (length < 4 || offset + length > data.Length)
            {
                yield break;
            }
            yield return (type, data.AsSpan(offset + 4, length - 4).ToArray());
            offset += (length + 3) & ~3;
        }
    }

    /// <summary>A request being built: header, fixed body, attributes (each padded to 4 bytes).</summary>
    private sealed class Message(ushort type, ushort flags, uint sequence)
    {
        private readonly List<byte> bytes = [];

        public ushort Flags => flags;

        public uint Sequence => sequence;

        public void Body(byte[] body) => bytes.AddRange(body);

        public void Attribute(ushort attributeType, byte[] value)
        {
            var header = new byte[4];
            BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(4 + value.Length));
            BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(2), attributeType);
            bytes.AddRange(header);
            bytes.AddRange(value);
            while (bytes.Count % 4 != 0)
            {
                bytes.Add(0);
            }
        }

        public byte[] ToArray()
        {
            var message = new byte[HeaderLength + bytes.Count];
            BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(4), type);
            BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(6), flags);
            BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), sequence);
            bytes.CopyTo(message, HeaderLength);
            return message;
        }
    }
}
