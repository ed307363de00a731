using System.Buffers.Binary;
using System.Net;
using System.Runtime.InteropServices;

namespace Sluice.Datapath.Abi;

/// <summary>A 32-bit value stored in network byte order (C <c>__be32</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct Be32(uint Raw)
{
    public static Be32 FromHost(uint value) => new(BinaryPrimitives.ReverseEndianness(value));

    public static Be32 From(IPAddress address)
    {
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        }
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return new(BitConverter.ToUInt32(bytes));
    }

    public uint ToHost() => BinaryPrimitives.ReverseEndianness(Raw);

    public IPAddress ToIPAddress() => new(BitConverter.GetBytes(Raw));

    public override string ToString() => ToIPAddress().ToString();
}

/// <summary>A 16-bit value stored in network byte order (C <c>__be16</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct Be16(ushort Raw)
{
    public static Be16 FromHost(ushort value) => new(BinaryPrimitives.ReverseEndianness(value));

    public ushort ToHost() => BinaryPrimitives.ReverseEndianness(Raw);

    public override string ToString() => ToHost().ToString();
}
