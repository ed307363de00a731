using System.Runtime.InteropServices;

namespace Sluice.Datapath.Interop;

/// <summary>The few libc calls Tmds.LibC does not cover.</summary>
internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint IfNameToIndex(string name);

    [LibraryImport("libc", EntryPoint = "if_indextoname", SetLastError = true)]
    private static unsafe partial byte* IfIndexToName(uint ifindex, byte* name);

    /// <summary>The interface's name, or null if there is none with that index.</summary>
    internal static unsafe string? IfIndexToName(uint ifindex)
    {
        var name = stackalloc byte[16]; // IF_NAMESIZE
        return IfIndexToName(ifindex, name) == null ? null : System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)name);
    }

    [LibraryImport("libc", EntryPoint = "vsnprintf")]
    internal static partial int VsnPrintf(nint buffer, nuint size, nint format, nint arguments);

    internal const int ClockMonotonic = 1;

    /// <summary>struct timespec on 64-bit Linux.</summary>
    internal struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime", SetLastError = true)]
    internal static unsafe partial int ClockGetTime(int clock, TimeSpec* time);

    internal const int OpenReadOnlyDirectory = 0x10000 | 0x80000; // O_RDONLY | O_DIRECTORY | O_CLOEXEC
    internal const int LockExclusiveNonBlocking = 2 | 4;           // LOCK_EX | LOCK_NB

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    internal static unsafe partial long Send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    internal static unsafe partial long Recv(int fd, byte* buffer, nuint length, int flags);

    private const long SysMembarrier = 324; // x86-64 (the loader refuses other architectures)
    internal const int MembarrierCommandGlobal = 1;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int command, uint flags, int cpu);

    internal static long Membarrier(int command) => Syscall(SysMembarrier, command, 0, 0);
}
