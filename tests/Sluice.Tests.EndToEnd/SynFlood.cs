using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Sluice.Testing;
using Sluice.Testing.Packets;

namespace Sluice.Tests.EndToEnd;

/// <summary>
/// Bare TCP SYNs from spoofed sources in 198.19.128.0/17 (inside the test range, away from
/// the client's 198.19.10.0/24), sent as Ethernet frames on the client namespace's veth
/// with an AF_PACKET socket.
/// </summary>
internal static class SynFlood
{
    private const int AfPacket = 17;
    private const int SockRaw = 3;
    private const ushort EthPIp = 0x0800;
    private const int Enobufs = 105;
    private const int Eagain = 11;

    public static List<byte[]> Frames(NetworkTopology network, IPEndPoint vip, int count, int seed)
    {
        var sourceMac = Mac(network.Client.Exec("cat", "/sys/class/net/c0/address"));
        var destinationMac = Mac(network.Balancer.Exec("cat", "/sys/class/net/lbc/address"));
        var random = new Random(seed);
        var seen = new HashSet<(int, ushort)>();
        var frames = new List<byte[]>(count);
        while (frames.Count < count)
        {
            var host = random.Next(0, 1 << 15);
            var port = (ushort)random.Next(1024, 65536);
            if (!seen.Add((host, port)))
            {
                continue;
            }
            frames.Add(PacketBuilder.Build(new PacketSpec
            {
                SourceMac = sourceMac,
                DestinationMac = destinationMac,
                Source = new IPAddress([198, 19, (byte)(128 | (host >> 8)), (byte)host]),
                Destination = vip.Address,
                SourcePort = port,
                DestinationPort = (ushort)vip.Port,
                TcpFlags = 0x02,
                TcpSequence = (uint)random.NextInt64(0, 1L << 32),
                Identification = (ushort)random.Next(0, 65536),
            }));
        }
        return frames;
    }

    /// <summary>
    /// Sends every frame once (retrying only a full device queue), on a thread inside the
    /// client's namespace; stops at the time limit. Returns how many were sent.
    /// </summary>
    public static int Send(TestNamespace client, List<byte[]> frames, TimeSpan limit)
    {
        var ifindex = int.Parse(client.Exec("cat", "/sys/class/net/c0/ifindex").Trim());
        // Protocol 0: the socket sends and never receives.
        var fd = socket(AfPacket, SockRaw, 0);
        if (fd < 0)
        {
            throw new InvalidOperationException($"socket(AF_PACKET, SOCK_RAW) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        try
        {
            var address = new byte[20]; // struct sockaddr_ll
            BitConverter.TryWriteBytes(address.AsSpan(0), (ushort)AfPacket);
            address[2] = EthPIp >> 8; // sll_protocol, network order
            address[3] = EthPIp & 0xff;
            BitConverter.TryWriteBytes(address.AsSpan(4), ifindex);
            address[11] = 6; // sll_halen
            frames[0].AsSpan(0, 6).CopyTo(address.AsSpan(12));
            var clock = Stopwatch.StartNew();
            var sent = 0;
            while (sent < frames.Count && clock.Elapsed < limit)
            {
                var frame = frames[sent];
                if (sendto(fd, frame, frame.Length, 0, address, address.Length) == frame.Length)
                {
                    sent++;
                    // Pace a little: the veth's ring (256 frames) must not overflow into drops.
                    if (sent % 64 == 0)
                    {
                        Thread.Sleep(0);
                    }
                    continue;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno is not (Enobufs or Eagain))
                {
                    throw new InvalidOperationException($"sendto on c0 failed: errno {errno}");
                }
                Thread.Sleep(1);
            }
            return sent;
        }
        finally
        {
            close(fd);
        }
    }

    private static byte[] Mac(string text) => [.. text.Trim().Split(':').Select(b => Convert.ToByte(b, 16))];

    [DllImport("libc", SetLastError = true)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport("libc", SetLastError = true)]
    private static extern nint sendto(int fd, byte[] buffer, nint length, int flags, byte[] address, int addressLength);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
