namespace Sluice.Datapath.Maglev;

/// <summary>
/// Table sizes (M). M must be prime; with M >= 100 x N each backend's share is within
/// about 1% of M/N. Services with up to 10 backends share the smallest size, so adding
/// or removing one of them does not resize (and reshuffle) the table.
/// </summary>
public static class MaglevTableSizes
{
    public static readonly IReadOnlyList<int> Primes = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537, 131071];

    public const int Minimum = 1021;

    public static int For(int backendCount)
    {
        var wanted = Math.Max(Minimum, 100L * backendCount);
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
