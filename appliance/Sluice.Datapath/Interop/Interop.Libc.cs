using System.Runtime.InteropServices;

namespace Sluice.Datapath.Interop;

/// <summary>The few libc calls Tmds.LibC does not cover.</summary>
internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint IfNameToIndex(string name);

    [LibraryImport("libc", EntryPoint = "vsnprintf")]
    internal static partial int VsnPrintf(nint buffer, nuint size, nint format, nint arguments);
}
