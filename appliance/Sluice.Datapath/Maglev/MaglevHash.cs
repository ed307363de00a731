namespace Sluice.Datapath.Maglev;

/// <summary>
/// The name hash behind offset and skip: 64-bit FNV-1a over the bytes, then the
/// MurmurHash3 64-bit finaliser for avalanche. Defined here bit for bit, never
/// delegated to a runtime hash, because appliances must agree across versions.
/// </summary>
public static class MaglevHash
{
    public static ulong Hash(ReadOnlySpan<byte> data, uint seed)
    {
        var hash = 0xcbf29ce484222325UL ^ (seed * 0x9e3779b97f4a7c15UL);
        foreach (var b in data)
        {
            hash ^= b;
            hash *= 0x100000001b3UL;
        }
        hash ^= hash >> 33;
        hash *= 0xff51afd7ed558ccdUL;
        hash ^= hash >> 33;
        hash *= 0xc4ceb9fe1a85ec53UL;
        hash ^= hash >> 33;
        return hash;
    }
}
