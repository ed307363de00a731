namespace Sluice.Datapath.Maglev;

/// <summary>
/// Table sizes (M). M must be prime; with M >= 100 x N each backend's share is within about 1%
/// of M/N. A resize moves nearly every slot, so a service's size depends only on how many
/// backends it is configured with (never on health or drain, so two appliances with the same
/// configuration agree), and every service with up to <see cref="DefaultCapacity"/> of them has
/// <see cref="Default"/>: adding or removing one within that moves about its own share. Growing
/// past a size's capacity (M / 100) resizes, which the control plane logs. A service may name its
/// size instead (<c>maglevTableSize</c>), fixed whatever its backends.
/// </summary>
public static class MaglevTableSizes
{
    public static readonly IReadOnlyList<int> Primes = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537, 131071];

    /// <summary>The size of every service with up to <see cref="DefaultCapacity"/> backends (16 KiB of kernel memory).</summary>
    public const int Default = 4093;

    public const int DefaultCapacity = Default / 100;

    /// <summary>Backends a size takes with each one's share within about 1%.</summary>
    public static int CapacityOf(int size) => size / 100;

    public static int For(int backendCount)
    {
        var wanted = Math.Max(Default, 100L * backendCount);
        foreach (var prime in Primes)
        {
            if (prime >= wanted)
            {
                return prime;
            }
        }
        return Primes[^1];
    }

    public static bool IsPrime(int value)
    {
        if (value < 2) return false;
        if (value % 2 == 0) return value == 2;
        for (var divisor = 3; (long)divisor * divisor <= value; divisor += 2)
        {
            if (value % divisor == 0) return false;
        }
        return true;
    }
}
