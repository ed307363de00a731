using System.Security.Cryptography;
using System.Text;

namespace Sluice.Daemon.Api;

/// <summary>
/// The bearer token of the API: read from the token file, or created there (mode 0600)
/// on first start. Compared in constant time.
/// </summary>
public sealed class ApiToken
{
    private readonly byte[] token;

    private ApiToken(byte[] token) => this.token = token;

    public static ApiToken LoadOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var created = Base64Url(RandomNumberGenerator.GetBytes(32));
            using var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            stream.Write(Encoding.ASCII.GetBytes(created + "\n"));
        }
        var text = File.ReadAllText(path).Trim();
        if (text.Length < 16)
        {
            throw new InvalidOperationException($"the API token in {path} is shorter than 16 characters");
        }
        return new ApiToken(Encoding.UTF8.GetBytes(text));
    }

    public bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), token);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
