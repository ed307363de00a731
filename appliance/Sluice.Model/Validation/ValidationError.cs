namespace Sluice.Model.Validation;

/// <summary>One problem with user input: where (a field path) and what.</summary>
public sealed record ValidationError(string Path, string Message)
{
    public override string ToString() => $"{Path}: {Message}";
}

/// <summary>Collects every error with its path prefix; validators report all, never the first.</summary>
public sealed class ValidationErrors
{
    private readonly List<ValidationError> errors = [];

    public IReadOnlyList<ValidationError> All => errors;

    public bool Any => errors.Count > 0;

    public void Add(string path, string message) => errors.Add(new(path, message));

    public static string Join(string prefix, string field) =>
        prefix.Length == 0 ? field : field.StartsWith('[') ? prefix + field : $"{prefix}.{field}";
}
