using System.Runtime.InteropServices;

namespace Sluice.Datapath.Interop;

/// <summary>
/// Raw libbpf 1.x entry points. libbpf 1.x returns NULL or a negative errno and also
/// sets errno, so every import sets <c>SetLastError</c>; callers go through the
/// checked wrappers in <see cref="BpfObject"/>, <see cref="Maps.BpfMap"/> and friends.
/// </summary>
internal static unsafe partial class Libbpf
{
    private const string Library = "libbpf.so.1";

    [LibraryImport(Library, EntryPoint = "bpf_object__open_file", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ObjectOpenFile(string path, nint options);

    [LibraryImport(Library, EntryPoint = "bpf_object__load", SetLastError = true)]
    internal static partial int ObjectLoad(nint obj);

    [LibraryImport(Library, EntryPoint = "bpf_object__close")]
    internal static partial void ObjectClose(nint obj);

    [LibraryImport(Library, EntryPoint = "bpf_object__find_program_by_name", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ObjectFindProgramByName(nint obj, string name);

    [LibraryImport(Library, EntryPoint = "bpf_program__fd", SetLastError = true)]
    internal static partial int ProgramFd(nint program);

    [LibraryImport(Library, EntryPoint = "bpf_object__next_map")]
    internal static partial nint ObjectNextMap(nint obj, nint previous);

    [LibraryImport(Library, EntryPoint = "bpf_map__name")]
    internal static partial nint MapName(nint map);

    [LibraryImport(Library, EntryPoint = "bpf_map__fd", SetLastError = true)]
    internal static partial int MapFd(nint map);

    [LibraryImport(Library, EntryPoint = "bpf_map__set_max_entries", SetLastError = true)]
    internal static partial int MapSetMaxEntries(nint map, uint maxEntries);

    [LibraryImport(Library, EntryPoint = "bpf_map__set_pin_path", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MapSetPinPath(nint map, string? path);

    [LibraryImport(Library, EntryPoint = "bpf_map__initial_value", SetLastError = true)]
    internal static partial nint MapInitialValue(nint map, out nuint size);

    [LibraryImport(Library, EntryPoint = "bpf_map_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MapCreate(uint mapType, string? name, uint keySize, uint valueSize, uint maxEntries, MapCreateOptions* options);

    [LibraryImport(Library, EntryPoint = "bpf_map_update_elem", SetLastError = true)]
    internal static partial int MapUpdateElem(int fd, void* key, void* value, ulong flags);

    [LibraryImport(Library, EntryPoint = "bpf_map_lookup_elem", SetLastError = true)]
    internal static partial int MapLookupElem(int fd, void* key, void* value);

    [LibraryImport(Library, EntryPoint = "bpf_map_delete_elem", SetLastError = true)]
    internal static partial int MapDeleteElem(int fd, void* key);

    [LibraryImport(Library, EntryPoint = "bpf_map_get_next_key", SetLastError = true)]
    internal static partial int MapGetNextKey(int fd, void* key, void* nextKey);

    [LibraryImport(Library, EntryPoint = "bpf_map_lookup_batch", SetLastError = true)]
    internal static partial int MapLookupBatch(int fd, void* inBatch, void* outBatch, void* keys, void* values, uint* count, nint options);

    [LibraryImport(Library, EntryPoint = "bpf_map_delete_batch", SetLastError = true)]
    internal static partial int MapDeleteBatch(int fd, void* keys, uint* count, nint options);

    [LibraryImport(Library, EntryPoint = "bpf_map_lookup_and_delete_elem", SetLastError = true)]
    internal static partial int MapLookupAndDeleteElem(int fd, void* key, void* value);

    [LibraryImport(Library, EntryPoint = "bpf_map_update_batch", SetLastError = true)]
    internal static partial int MapUpdateBatch(int fd, void* keys, void* values, uint* count, nint options);

    [LibraryImport(Library, EntryPoint = "bpf_map_get_fd_by_id", SetLastError = true)]
    internal static partial int MapGetFdById(uint id);

    [LibraryImport(Library, EntryPoint = "bpf_obj_pin", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ObjPin(int fd, string path);

    [LibraryImport(Library, EntryPoint = "bpf_obj_get", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ObjGet(string path);

    [LibraryImport(Library, EntryPoint = "bpf_obj_get_info_by_fd", SetLastError = true)]
    internal static partial int ObjGetInfoByFd(int fd, void* info, uint* infoLength);

    [LibraryImport(Library, EntryPoint = "bpf_xdp_attach", SetLastError = true)]
    internal static partial int XdpAttach(int ifindex, int programFd, uint flags, XdpAttachOptions* options);

    [LibraryImport(Library, EntryPoint = "bpf_xdp_detach", SetLastError = true)]
    internal static partial int XdpDetach(int ifindex, uint flags, XdpAttachOptions* options);

    [LibraryImport(Library, EntryPoint = "bpf_xdp_query_id", SetLastError = true)]
    internal static partial int XdpQueryId(int ifindex, int flags, uint* programId);

    [LibraryImport(Library, EntryPoint = "bpf_prog_get_fd_by_id", SetLastError = true)]
    internal static partial int ProgramGetFdById(uint id);

    [LibraryImport(Library, EntryPoint = "bpf_prog_test_run_opts", SetLastError = true)]
    internal static partial int ProgramTestRun(int programFd, TestRunOptions* options);

    [LibraryImport(Library, EntryPoint = "libbpf_set_print")]
    internal static partial nint SetPrint(nint callback);

    [LibraryImport(Library, EntryPoint = "libbpf_num_possible_cpus")]
    internal static partial int NumPossibleCpus();

    /// <summary>struct bpf_map_create_opts (libbpf 1.1).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct MapCreateOptions
    {
        public nuint Size;
        public uint BtfFd;
        public uint BtfKeyTypeId;
        public uint BtfValueTypeId;
        public uint BtfVmlinuxValueTypeId;
        public uint InnerMapFd;
        public uint MapFlags;
        public ulong MapExtra;
        public uint NumaNode;
        public uint MapIfindex;
    }

    /// <summary>struct bpf_xdp_attach_opts.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct XdpAttachOptions
    {
        public nuint Size;
        public int OldProgramFd;
    }

    /// <summary>struct bpf_test_run_opts (libbpf 1.1). <c>Size</c> must be set.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct TestRunOptions
    {
        public nuint Size;
        public void* DataIn;
        public void* DataOut;
        public uint DataSizeIn;
        public uint DataSizeOut;
        public void* ContextIn;
        public void* ContextOut;
        public uint ContextSizeIn;
        public uint ContextSizeOut;
        public uint ReturnValue;
        public int Repeat;
        public uint Duration;
        public uint Flags;
        public uint Cpu;
        public uint BatchSize;
    }

    /// <summary>The leading fields of struct bpf_prog_info we read.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct ProgramInfoHead
    {
        public uint Type;
        public uint Id;
    }
}
