//! The standard profile's world, as data: accounts, regions, addresses,
//! user agents, principals and what each calls, the services and the APIs
//! with their request and response templates, and the pools of resource
//! names the templates draw from.

// ---------------------------------------------------------------------------
// The world: accounts, principals, addresses, agents

pub(super) struct Account {
    pub(super) id: &'static str,
    pub(super) home: &'static str,
    pub(super) weight: u32,
}

/// prod, staging, dev, security, management.
pub(super) const ACCOUNTS: [Account; 5] = [
    Account { id: "482910573316", home: "us-east-1", weight: 50 },
    Account { id: "735102984467", home: "us-west-2", weight: 20 },
    Account { id: "219384756021", home: "eu-west-1", weight: 15 },
    Account { id: "604917283350", home: "us-east-1", weight: 8 },
    Account { id: "918273645501", home: "us-east-1", weight: 7 },
];

pub(super) const REGIONS: [&str; 6] = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "us-east-2"];

/// Public and private source addresses; principals use slices of it
/// (offices, CI runners, NAT gateways, VPC endpoints, vendors, strangers).
pub(super) const IPS: [&str; 50] = [
    // 0: offices and homes
    "81.2.69.142",
    "86.14.211.40",
    "98.207.254.77",
    "73.162.91.14",
    "24.5.190.201",
    "176.58.123.9",
    // 6: CI runners
    "20.172.29.116",
    "4.227.185.49",
    "52.234.41.91",
    "172.176.210.4",
    "20.57.68.102",
    "40.76.3.157",
    "13.90.140.100",
    "20.232.34.7",
    // 14: NAT gateways
    "3.216.48.17",
    "34.199.210.6",
    "52.44.121.95",
    "54.164.33.208",
    "18.207.110.52",
    "44.206.71.130",
    "35.160.23.8",
    "52.36.88.201",
    "34.245.117.48",
    "54.75.211.96",
    "18.133.5.90",
    "3.125.62.11",
    // 26: VPC endpoints
    "10.0.12.34",
    "10.0.45.19",
    "10.0.78.201",
    "10.1.3.77",
    "10.1.22.150",
    "172.31.40.6",
    "172.31.9.88",
    "10.2.0.15",
    // 34: vendors
    "3.233.144.12",
    "3.233.146.54",
    "44.192.28.40",
    "3.233.147.199",
    "54.81.99.113",
    "52.20.134.8",
    "35.173.84.90",
    "3.93.71.22",
    // 42: elsewhere
    "185.220.101.34",
    "45.148.10.81",
    "103.251.167.10",
    "2a02:c7c:1f3a:1200:5d1e:9b2f:7c4a:11e0",
    "2600:1700:3ec1:b80:8d2e:14f1:a6c3:77b2",
    "91.198.174.192",
    "139.162.171.5",
    "64.227.12.88",
];

pub(super) const AGENTS: [&str; 16] = [
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#amzn.2023 md/prompt#off",
    "aws-cli/2.17.12 md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env#AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.69",
    "Boto3/1.35.10 md/Botocore#1.35.10 ua/2.0 os/linux#6.5.0-1022-aws md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.10",
    "console.amazonaws.com",
    "AWS Internal",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#go1.22.5 md/GOOS#linux md/GOARCH#amd64",
    "aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)",
    "aws-sdk-java/2.25.14 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. exec-env/AWS_ECS_FARGATE io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-js/3.609.0 ua/2.1 os/linux#5.10.219-229.866.amzn2.x86_64 lang/js md/nodejs#20.15.0 exec-env/AWS_Lambda_nodejs20.x",
    "aws-sdk-go/1.44.260 (go1.20.7; linux; amd64) amazon-ssm-agent/3.3.418.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "config.amazonaws.com",
    "aws-cli/1.32.101 Python/3.9.18 Linux/5.10.215-203.850.amzn2.x86_64 exec-env/CloudShell botocore/1.34.101",
];
pub(super) const BROWSERS: [usize; 2] = [12, 13];

pub(super) const USERS: [&str; 10] = ["alice", "deploy-bot", "grafana", "bob", "terraform", "carol", "dave", "erin", "frank", "ci-legacy"];

/// (role name, session name).
pub(super) const ROLES: [(&str, &str); 12] = [
    ("eks-node-role", "i-0a1b2c3d4e5f60718"),
    ("lambda-process-orders-role", "process-orders"),
    ("DatadogIntegrationRole", "DatadogAWSIntegration"),
    ("AWSServiceRoleForConfig", "AWSConfig-Describe"),
    ("github-actions-deploy", "GitHubActions"),
    ("OrganizationAccountAccessRole", "terraform"),
    ("AWSReservedSSO_AdministratorAccess_1a2b3c4d5e6f7a8b", "alice@example.com"),
    ("AWSReservedSSO_ReadOnlyAccess_9f8e7d6c5b4a3210", "carol@example.com"),
    ("SecurityAuditRole", "prowler-scan"),
    ("ecsTaskExecutionRole", "8d3f0a3c1b2e4f5a9c7d6e5f4a3b2c1d"),
    ("AmazonSSMRoleForInstances", "i-0f1e2d3c4b5a69788"),
    ("lambda-resize-images-role", "resize-images"),
];

/// Services acting as themselves (userIdentity type AWSService).
pub(super) const INVOKERS: [&str; 8] = [
    "lambda.amazonaws.com",
    "ec2.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "config.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "s3.amazonaws.com",
    "cloudformation.amazonaws.com",
    "autoscaling.amazonaws.com",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    User,
    Role,
    Root,
    Service,
}

/// Which APIs a principal calls.
pub(super) enum Apis {
    All,
    /// Read-only management events (scanners, monitoring).
    Reads,
    /// These event names only (all variants of each).
    Only(&'static [&'static str]),
}

/// Any account: chosen per event.
pub(super) const ANY: usize = usize::MAX;

pub(super) struct Principal {
    pub(super) kind: Kind,
    /// Index into USERS, ROLES or INVOKERS (unused for Root).
    pub(super) idx: usize,
    /// Index into ACCOUNTS, or ANY.
    pub(super) acct: usize,
    /// Relative activity.
    pub(super) weight: u32,
    /// User agents (indexes into AGENTS), the first the most used.
    pub(super) agents: &'static [usize],
    /// Source addresses: IPS[base .. base + width].
    pub(super) ips: (usize, usize),
    pub(super) apis: Apis,
    /// Uses the console (sign-ins, console sessions).
    pub(super) human: bool,
    /// Calls arrive through this service (`invokedBy`, as the address and
    /// the agent), e.g. AWS Config's service-linked role.
    pub(super) via: &'static str,
}

/// A `Principal` without `via` (a positional constructor keeps the table
/// below readable).
#[allow(clippy::too_many_arguments)]
const fn pr(
    kind: Kind,
    idx: usize,
    acct: usize,
    weight: u32,
    agents: &'static [usize],
    ips: (usize, usize),
    apis: Apis,
    human: bool,
) -> Principal {
    Principal { kind, idx, acct, weight, agents, ips, apis, human, via: "" }
}

use Kind::{Role, Root, Service, User};

/// Root works in the console, mostly on account-level settings.
const ROOT_APIS: Apis = Apis::Only(&[
    "ListBuckets",
    "GetBucketPolicy",
    "ListUsers",
    "GetUser",
    "ListMFADevices",
    "ListAccessKeys",
    "CreateAccessKey",
    "DeleteAccessKey",
    "DescribeTrails",
    "DescribeOrganization",
    "ListAccounts",
    "DescribeRegions",
    "GetCallerIdentity",
]);

/// Everyone who calls AWS, by activity (AWS services and automation first,
/// as in real trails).
pub(super) static PRINCIPALS: [Principal; 34] = [
    pr(Service, 0, ANY, 80, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 1, ANY, 40, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 2, ANY, 30, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 3, ANY, 15, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 4, ANY, 60, &[], (0, 0), Apis::Only(&["GetBucketAcl"]), false),
    pr(Service, 5, ANY, 100, &[], (0, 0), Apis::Only(&["Decrypt", "GenerateDataKey"]), false),
    pr(Service, 6, ANY, 5, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(Service, 7, ANY, 5, &[], (0, 0), Apis::Only(&["AssumeRole"]), false),
    pr(
        Role,
        0,
        0,
        60,
        &[8],
        (14, 4),
        Apis::Only(&[
            "DescribeInstances",
            "DescribeVolumes",
            "DescribeNetworkInterfaces",
            "GetAuthorizationToken",
            "BatchGetImage",
            "GetDownloadUrlForLayer",
            "DescribeCluster",
            "AssumeRoleWithWebIdentity",
            "Decrypt",
        ]),
        false,
    ),
    pr(
        Role,
        1,
        0,
        70,
        &[2],
        (14, 4),
        Apis::Only(&[
            "Decrypt",
            "GetParameter",
            "GetSecretValue",
            "GetObject",
            "PutObject",
            "DescribeTable",
            "GenerateDataKey",
            "GetParameters",
            "CreateLogStream",
        ]),
        false,
    ),
    pr(Role, 2, ANY, 45, &[8], (34, 8), Apis::Reads, false),
    Principal { via: "config.amazonaws.com", ..pr(Role, 3, ANY, 30, &[14], (0, 0), Apis::Reads, false) },
    pr(Role, 4, 0, 35, &[6, 0], (6, 8), Apis::All, false),
    pr(Role, 5, ANY, 25, &[6], (0, 2), Apis::All, false),
    pr(Role, 6, 0, 30, &[0, 1, 4, 12], (0, 3), Apis::All, true),
    pr(Role, 7, 1, 15, &[1, 4, 12], (3, 3), Apis::Reads, true),
    pr(Role, 8, ANY, 30, &[3], (17, 2), Apis::Reads, false),
    pr(
        Role,
        9,
        1,
        35,
        &[9],
        (18, 4),
        Apis::Only(&[
            "GetAuthorizationToken",
            "BatchGetImage",
            "GetDownloadUrlForLayer",
            "GetSecretValue",
            "GetParameters",
            "Decrypt",
            "CreateLogStream",
        ]),
        false,
    ),
    pr(Role, 10, 2, 40, &[11], (26, 8), Apis::Only(&["UpdateInstanceInformation", "GetParameter", "DescribeInstanceInformation"]), false),
    pr(Role, 11, 0, 30, &[10], (14, 4), Apis::Only(&["GetObject", "PutObject", "Decrypt", "GenerateDataKey", "CreateLogStream"]), false),
    pr(User, 0, 0, 80, &[0, 1, 3, 4, 15], (0, 3), Apis::All, true),
    pr(User, 1, 0, 60, &[6, 7], (6, 8), Apis::All, false),
    pr(
        User,
        2,
        0,
        60,
        &[7],
        (26, 3),
        Apis::Only(&[
            "GetMetricData",
            "ListMetrics",
            "DescribeAlarms",
            "GetMetricStatistics",
            "DescribeInstances",
            "DescribeLogGroups",
            "FilterLogEvents",
            "DescribeRegions",
        ]),
        false,
    ),
    pr(User, 3, 1, 30, &[0, 4, 12], (3, 3), Apis::All, true),
    pr(User, 4, 4, 20, &[6], (6, 8), Apis::All, false),
    pr(User, 5, 2, 12, &[1, 4, 13], (1, 3), Apis::All, true),
    pr(User, 6, 0, 10, &[0, 3], (2, 2), Apis::All, true),
    pr(User, 7, 3, 8, &[15, 4, 12], (4, 2), Apis::Reads, true),
    pr(User, 8, 2, 5, &[0, 13], (42, 8), Apis::All, true),
    pr(User, 9, 1, 15, &[3], (44, 3), Apis::All, false),
    pr(Root, 0, 0, 1, &[12, 4], (0, 2), ROOT_APIS, true),
    pr(Root, 0, 4, 1, &[12], (0, 2), ROOT_APIS, true),
    // Rarely active humans in the other accounts.
    pr(User, 0, 4, 3, &[0, 4], (0, 3), Apis::Reads, true),
    pr(User, 3, 2, 3, &[0, 12], (3, 3), Apis::All, true),
];

// ---------------------------------------------------------------------------
// Services and APIs

pub(super) enum RequestId {
    Uuid,
    /// S3: 16 upper-case alphanumerics.
    S3,
    /// DynamoDB: 52 upper-case alphanumerics.
    Dynamo,
}

pub(super) struct Svc {
    pub(super) source: &'static str,
    /// IAM action prefix (`cloudwatch` for monitoring).
    pub(super) prefix: &'static str,
    /// tlsDetails.clientProvidedHostHeader template.
    pub(super) host: &'static str,
    pub(super) request_id: RequestId,
    /// Global service: awsRegion is always us-east-1.
    pub(super) global: bool,
    /// (errorCode, errorMessage template, weight).
    pub(super) errors: &'static [(&'static str, &'static str, u32)],
}

const ACCESS_DENIED: (&str, &str, u32) =
    ("AccessDenied", "User: $% is not authorized to perform: $& because no identity-based policy allows the $& action", 2);
const THROTTLED: (&str, &str, u32) = ("ThrottlingException", "Rate exceeded", 1);

const EC2: usize = 0;
const S3: usize = 1;
const IAM: usize = 2;
const STS: usize = 3;
const KMS: usize = 4;
const LAMBDA: usize = 5;
const TRAIL: usize = 6;
const SSM: usize = 7;
const SECRETS: usize = 8;
const RDS: usize = 9;
const DDB: usize = 10;
const LOGS: usize = 11;
const CW: usize = 12;
const ECR: usize = 13;
const EKS: usize = 14;
const CFN: usize = 15;
const ORGS: usize = 16;

const fn svc(source: &'static str, prefix: &'static str, host: &'static str, errors: &'static [(&'static str, &'static str, u32)]) -> Svc {
    Svc { source, prefix, host, request_id: RequestId::Uuid, global: false, errors }
}

pub(super) static SERVICES: [Svc; 17] = [
    svc(
        "ec2.amazonaws.com",
        "ec2",
        "ec2.$r.amazonaws.com",
        &[
            (
                "Client.UnauthorizedOperation",
                "You are not authorized to perform this operation. User: $% is not authorized to perform: $& because no identity-based policy allows the $& action",
                3,
            ),
            ("Client.RequestLimitExceeded", "Request limit exceeded.", 1),
        ],
    ),
    Svc { request_id: RequestId::S3, ..svc("s3.amazonaws.com", "s3", "$b.s3.$r.amazonaws.com", &[("AccessDenied", "Access Denied", 1)]) },
    Svc {
        global: true,
        ..svc("iam.amazonaws.com", "iam", "iam.amazonaws.com", &[ACCESS_DENIED, ("NoSuchEntity", "The $^ cannot be found.", 2)])
    },
    svc(
        "sts.amazonaws.com",
        "sts",
        "sts.$r.amazonaws.com",
        &[("AccessDenied", "User: $% is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::$a:role/$R", 1)],
    ),
    svc("kms.amazonaws.com", "kms", "kms.$r.amazonaws.com", &[ACCESS_DENIED, THROTTLED]),
    svc(
        "lambda.amazonaws.com",
        "lambda",
        "lambda.$r.amazonaws.com",
        &[("ResourceNotFoundException", "Function not found: arn:aws:lambda:$r:$a:function:$f", 2), ACCESS_DENIED],
    ),
    svc("cloudtrail.amazonaws.com", "cloudtrail", "cloudtrail.$r.amazonaws.com", &[ACCESS_DENIED]),
    svc("ssm.amazonaws.com", "ssm", "ssm.$r.amazonaws.com", &[ACCESS_DENIED, THROTTLED, THROTTLED]),
    svc(
        "secretsmanager.amazonaws.com",
        "secretsmanager",
        "secretsmanager.$r.amazonaws.com",
        &[("ResourceNotFoundException", "Secrets Manager can't find the specified secret.", 3), ACCESS_DENIED],
    ),
    svc("rds.amazonaws.com", "rds", "rds.$r.amazonaws.com", &[ACCESS_DENIED, THROTTLED]),
    Svc {
        request_id: RequestId::Dynamo,
        ..svc(
            "dynamodb.amazonaws.com",
            "dynamodb",
            "dynamodb.$r.amazonaws.com",
            &[("ResourceNotFoundException", "Requested resource not found: Table: $t not found", 2), ACCESS_DENIED],
        )
    },
    svc(
        "logs.amazonaws.com",
        "logs",
        "logs.$r.amazonaws.com",
        &[("ResourceNotFoundException", "The specified log group does not exist.", 2), THROTTLED],
    ),
    svc("monitoring.amazonaws.com", "cloudwatch", "monitoring.$r.amazonaws.com", &[THROTTLED, ACCESS_DENIED]),
    svc("ecr.amazonaws.com", "ecr", "api.ecr.$r.amazonaws.com", &[ACCESS_DENIED]),
    svc(
        "eks.amazonaws.com",
        "eks",
        "eks.$r.amazonaws.com",
        &[("ResourceNotFoundException", "No cluster found for name: $c.", 1), ACCESS_DENIED],
    ),
    svc("cloudformation.amazonaws.com", "cloudformation", "cloudformation.$r.amazonaws.com", &[ACCESS_DENIED]),
    Svc { global: true, ..svc("organizations.amazonaws.com", "organizations", "organizations.us-east-1.amazonaws.com", &[ACCESS_DENIED]) },
];

/// One API as CloudTrail records it. Templates are JSON with `$x`
/// placeholders (see `Generator::placeholder` in template.rs); `N` is JSON
/// null, "" is "absent".
pub(super) struct Api {
    pub(super) svc: usize,
    pub(super) name: &'static str,
    pub(super) weight: u32,
    pub(super) read_only: bool,
    pub(super) req: &'static str,
    pub(super) resp: &'static str,
    /// The contents of the resources array.
    pub(super) res: &'static str,
    /// additionalEventData.
    pub(super) extra: &'static str,
}

const fn api(
    svc: usize,
    name: &'static str,
    weight: u32,
    read_only: bool,
    req: &'static str,
    resp: &'static str,
    res: &'static str,
) -> Api {
    Api { svc, name, weight, read_only, req, resp, res, extra: "" }
}

const fn s3(name: &'static str, weight: u32, read_only: bool, req: &'static str, resp: &'static str, res: &'static str) -> Api {
    Api { extra: S3_EXTRA, ..api(S3, name, weight, read_only, req, resp, res) }
}

impl Api {
    /// S3 object operations are data events, everything else management.
    pub(super) fn is_data(&self) -> bool {
        self.svc == S3 && self.name.ends_with("Object")
    }
}

const R: bool = true;
const W: bool = false;
pub(super) const N: &str = "null";

const S3_EXTRA: &str = r#"{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"$j","bytesTransferredOut":$N}"#;
const GET_OBJECT_EXTRA: &str = r#"{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"$j","bytesTransferredOut":$B}"#;
const PUT_OBJECT_EXTRA: &str = r#"{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":$B,"SSEApplied":"Default_SSE_S3","AuthenticationMethod":"AuthHeader","x-amz-id-2":"$j","bytesTransferredOut":0}"#;

const RES_BUCKET: &str = r#"{"accountId":"$a","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::$b"}"#;
const RES_OBJECT: &str =
    r#"{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::$b/$o"},{"accountId":"$a","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::$b"}"#;
const RES_KEY: &str = r#"{"accountId":"$a","type":"AWS::KMS::Key","ARN":"arn:aws:kms:$r:$a:key/$k"}"#;
const RES_ROLE: &str = r#"{"accountId":"$a","type":"AWS::IAM::Role","ARN":"arn:aws:iam::$a:role/$R"}"#;
const RES_USER: &str = r#"{"accountId":"$a","type":"AWS::IAM::User","ARN":"arn:aws:iam::$a:user/$U"}"#;
const RES_TABLE: &str = r#"{"accountId":"$a","type":"AWS::DynamoDB::Table","ARN":"arn:aws:dynamodb:$r:$a:table/$t"}"#;
const RES_FUNCTION: &str = r#"{"accountId":"$a","type":"AWS::Lambda::Function","ARN":"arn:aws:lambda:$r:$a:function:$f"}"#;
const RES_TRAIL: &str = r#"{"accountId":"$a","type":"AWS::CloudTrail::Trail","ARN":"arn:aws:cloudtrail:us-east-1:$a:trail/$0"}"#;
const RES_REPO: &str = r#"{"accountId":"$a","type":"AWS::ECR::Repository","ARN":"arn:aws:ecr:$r:$a:repository/$e"}"#;
const RES_INSTANCE: &str = r#"{"accountId":"$a","type":"AWS::EC2::Instance","ARN":"arn:aws:ec2:$r:$a:instance/$i"}"#;
const RES_SECRET: &str = r#"{"accountId":"$a","type":"AWS::SecretsManager::Secret","ARN":"arn:aws:secretsmanager:$r:$a:secret:$x-$X"}"#;

const CREDENTIALS: &str = r#"{"credentials":{"accessKeyId":"$K","sessionToken":"$z","expiration":"$E"},"assumedRoleUser":{"assumedRoleId":"$O:$S","arn":"arn:aws:sts::$a:assumed-role/$R/$S"}}"#;
const INSTANCE_STATE: &str = concat!(
    r#"{"requestId":"$u","instancesSet":{"items":[{"instanceId":"$i","currentState":{"code":64,"name":"stopping"},"#,
    r#""previousState":{"code":16,"name":"running"}}]}}"#
);
const OK_RETURN: &str = r#"{"requestId":"$u","_return":true}"#;
const LAMBDA_CONFIG: &str = concat!(
    r#"{"functionName":"$f","functionArn":"arn:aws:lambda:$r:$a:function:$f","runtime":"python3.12","role":"arn:aws:iam::$a:role/$R","#,
    r#""handler":"app.handler","codeSize":$B,"description":"","timeout":30,"memorySize":512,"lastModified":"$1","codeSha256":"$j","#,
    r#""version":"$N","tracingConfig":{"mode":"PassThrough"},"revisionId":"$u","state":"Active","lastUpdateStatus":"InProgress","#,
    r#""lastUpdateStatusReason":"The function is being created.","lastUpdateStatusReasonCode":"Creating","packageType":"Zip","#,
    r#""architectures":["arm64"],"ephemeralStorage":{"size":512},"snapStart":{"applyOn":"None","optimizationStatus":"Off"},"#,
    r#""loggingConfig":{"logFormat":"Text","logGroup":"/aws/lambda/$f"}}"#
);
const RUN_INSTANCES_REQ: &str = concat!(
    r#"{"instancesSet":{"items":[{"imageId":"$m","minCount":1,"maxCount":1}]},"instanceType":"m6i.large","#,
    r#""blockDeviceMapping":{"items":[{"deviceName":"/dev/xvda","ebs":{"volumeSize":50,"deleteOnTermination":true,"volumeType":"gp3","encrypted":true}}]},"#,
    r#""availabilityZone":"$Z","monitoring":{"enabled":false},"disableApiTermination":false,"#,
    r#""clientToken":"$u","networkInterfaceSet":{"items":[{"deviceIndex":0,"subnetId":"$s","associatePublicIpAddress":false,"#,
    r#""groupSet":{"items":[{"groupId":"$g"}]}}]},"iamInstanceProfile":{"arn":"arn:aws:iam::$a:instance-profile/$R"},"ebsOptimized":true,"#,
    r#""tagSpecificationSet":{"items":[{"resourceType":"instance","tags":[$A]}]},"metadataOptions":{"httpTokens":"required","httpPutResponseHopLimit":2}}"#
);
const RUN_INSTANCES_RESP: &str = concat!(
    r#"{"requestId":"$u","reservationId":"r-0$q","ownerId":"$a","groupSet":{},"instancesSet":{"items":[{"instanceId":"$i","imageId":"$m","#,
    r#""instanceState":{"code":0,"name":"pending"},"privateDnsName":"ip-10-0-$2-17.ec2.internal","amiLaunchIndex":0,"productCodes":{},"#,
    r#""instanceType":"m6i.large","launchTime":$M,"placement":{"availabilityZone":"$Z","tenancy":"default"},"#,
    r#""monitoring":{"state":"disabled"},"subnetId":"$s","vpcId":"$v","privateIpAddress":"10.0.$2.17","#,
    r#""architecture":"x86_64","rootDeviceType":"ebs","rootDeviceName":"/dev/xvda","tagSet":{"items":[$A]},"clientToken":"$u","#,
    r#""groupSet":{"items":[{"groupId":"$g","groupName":"app-servers"}]},"sourceDestCheck":true,"networkInterfaceSet":{"items":["#,
    r#"{"networkInterfaceId":"eni-0$q","subnetId":"$s","vpcId":"$v","ownerId":"$a","status":"in-use","privateIpAddress":"10.0.$2.17","#,
    r#""interfaceType":"interface","attachment":{"attachmentId":"eni-attach-0$q","deviceIndex":0,"status":"attaching"}}]},"#,
    r#""iamInstanceProfile":{"arn":"arn:aws:iam::$a:instance-profile/$R","id":"AIPA$y"},"ebsOptimized":true,"enaSupport":true,"#,
    r#""cpuOptions":{"coreCount":1,"threadsPerCore":2},"metadataOptions":{"state":"pending","httpTokens":"required","#,
    r#""httpPutResponseHopLimit":2,"httpEndpoint":"enabled"}}]}}"#
);
const SEND_COMMAND_RESP: &str = concat!(
    r#"{"command":{"commandId":"$u","documentName":"AWS-RunShellScript","documentVersion":"$$DEFAULT","comment":"","expiresAfter":"$E","#,
    r#""parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","instanceIds":["$i"],"targets":[],"requestedDateTime":"$T","status":"Pending","#,
    r#""statusDetails":"Pending","outputS3Region":"$r","outputS3BucketName":"","outputS3KeyPrefix":"","maxConcurrency":"50","#,
    r#""maxErrors":"0","targetCount":1,"completedCount":0,"errorCount":0,"deliveryTimedOutCount":0,"serviceRole":"","#,
    r#""notificationConfig":{"notificationArn":"","notificationEvents":[],"notificationType":""},"#,
    r#""cloudWatchOutputConfig":{"cloudWatchLogGroupName":"","cloudWatchOutputEnabled":false},"timeoutSeconds":3600,"#,
    r#""alarmConfiguration":{"ignorePollAlarmFailure":false,"alarms":[]},"triggeredAlarms":[]}}"#
);
const TABLE_DESCRIPTION: &str = concat!(
    r#"{"tableDescription":{"tableName":"$t","tableStatus":"UPDATING","tableArn":"arn:aws:dynamodb:$r:$a:table/$t","tableId":"$u","#,
    r#""billingModeSummary":{"billingMode":"PAY_PER_REQUEST"},"attributeDefinitions":[{"attributeName":"pk","attributeType":"S"},"#,
    r#"{"attributeName":"sk","attributeType":"S"}],"keySchema":[{"attributeName":"pk","keyType":"HASH"},"#,
    r#"{"attributeName":"sk","keyType":"RANGE"}],"itemCount":0,"tableSizeBytes":0,"deletionProtectionEnabled":false}}"#
);

/// The APIs with their weights in the overall mix (per ~10,000 calls).
/// Variants of one API (same source and name) differ in parameters.
pub(super) static APIS: [Api; 138] = [
    // EC2
    api(EC2, "DescribeInstances", 380, R, r#"{"instancesSet":{"items":[$I]},"filterSet":{"items":[$F]}}"#, N, ""),
    api(
        EC2,
        "DescribeSecurityGroups",
        150,
        R,
        r#"{"securityGroupSet":{},"securityGroupIdSet":{"items":[{"groupId":"$g"}]},"filterSet":{"items":[$F]}}"#,
        N,
        "",
    ),
    api(EC2, "DescribeVolumes", 100, R, r#"{"volumeSet":{},"filterSet":{"items":[$F]},"maxResults":500}"#, N, ""),
    api(
        EC2,
        "DescribeSubnets",
        80,
        R,
        r#"{"subnetSet":{},"filterSet":{"items":[{"name":"vpc-id","valueSet":{"items":[{"value":"$v"}]}}]}}"#,
        N,
        "",
    ),
    api(EC2, "DescribeVpcs", 60, R, r#"{"vpcSet":{},"filterSet":{}}"#, N, ""),
    api(EC2, "DescribeNetworkInterfaces", 80, R, r#"{"networkInterfaceIdSet":{},"filterSet":{"items":[$F]}}"#, N, ""),
    api(
        EC2,
        "DescribeSnapshots",
        35,
        R,
        r#"{"snapshotSet":{},"ownersSet":{"items":[{"owner":"self"}]},"sharedUsersSet":{},"filterSet":{"items":[$F]}}"#,
        N,
        "",
    ),
    api(
        EC2,
        "DescribeImages",
        35,
        R,
        r#"{"executableBySet":{},"imagesSet":{"items":[{"imageId":"$m"}]},"ownersSet":{},"filterSet":{},"includeDeprecated":false}"#,
        N,
        "",
    ),
    api(EC2, "DescribeRegions", 30, R, r#"{"regionSet":{}}"#, N, ""),
    api(EC2, "DescribeAvailabilityZones", 20, R, r#"{"availabilityZoneSet":{},"availabilityZoneIdSet":{}}"#, N, ""),
    api(EC2, "DescribeInstanceStatus", 40, R, r#"{"instancesSet":{"items":[$I]},"filterSet":{},"includeAllInstances":false}"#, N, ""),
    api(EC2, "RunInstances", 4, W, RUN_INSTANCES_REQ, RUN_INSTANCES_RESP, ""),
    api(
        EC2,
        "TerminateInstances",
        4,
        W,
        r#"{"instancesSet":{"items":[{"instanceId":"$i"}]}}"#,
        concat!(
            r#"{"requestId":"$u","instancesSet":{"items":[{"instanceId":"$i","currentState":{"code":32,"name":"shutting-down"},"#,
            r#""previousState":{"code":16,"name":"running"}}]}}"#
        ),
        RES_INSTANCE,
    ),
    api(EC2, "StopInstances", 4, W, r#"{"instancesSet":{"items":[{"instanceId":"$i"}]},"force":false}"#, INSTANCE_STATE, RES_INSTANCE),
    api(
        EC2,
        "StartInstances",
        4,
        W,
        r#"{"instancesSet":{"items":[{"instanceId":"$i"}]}}"#,
        concat!(
            r#"{"requestId":"$u","instancesSet":{"items":[{"instanceId":"$i","currentState":{"code":0,"name":"pending"},"#,
            r#""previousState":{"code":80,"name":"stopped"}}]}}"#
        ),
        RES_INSTANCE,
    ),
    api(EC2, "CreateTags", 25, W, r#"{"resourcesSet":{"items":[{"resourceId":"$i"}]},"tagSet":{"items":[$A]}}"#, OK_RETURN, ""),
    api(
        EC2,
        "AuthorizeSecurityGroupIngress",
        3,
        W,
        concat!(
            r#"{"groupId":"$g","ipPermissions":{"items":[{"ipProtocol":"tcp","fromPort":443,"toPort":443,"groups":{},"#,
            r#""ipRanges":{"items":[{"cidrIp":"0.0.0.0/0","description":"https"}]},"ipv6Ranges":{},"prefixListIds":{}}]}}"#
        ),
        concat!(
            r#"{"requestId":"$u","_return":true,"securityGroupRuleSet":{"items":[{"groupOwnerId":"$a","groupId":"$g","#,
            r#""securityGroupRuleId":"sgr-0$q","isEgress":false,"ipProtocol":"tcp","fromPort":443,"toPort":443,"#,
            r#""cidrIpv4":"0.0.0.0/0","description":"https"}]}}"#
        ),
        "",
    ),
    api(
        EC2,
        "CreateSecurityGroup",
        2,
        W,
        r#"{"groupName":"launch-wizard-$N","groupDescription":"launch-wizard-$N created $1","vpcId":"$v"}"#,
        r#"{"requestId":"$u","_return":true,"groupId":"$g"}"#,
        "",
    ),
    api(
        EC2,
        "CreateSnapshot",
        5,
        W,
        r#"{"volumeId":"$l","description":"Created by AWS Backup"}"#,
        concat!(
            r#"{"requestId":"$u","snapshotId":"$n","volumeId":"$l","status":"pending","startTime":$M,"progress":"","#,
            r#""ownerId":"$a","volumeSize":50,"encrypted":true,"kmsKeyId":"arn:aws:kms:$r:$a:key/$k"}"#
        ),
        "",
    ),
    // S3 (object operations are data events)
    s3("GetBucketLocation", 110, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","location":""}"#, N, RES_BUCKET),
    s3("GetBucketAcl", 70, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","acl":""}"#, N, RES_BUCKET),
    s3("ListBuckets", 50, R, r#"{"Host":"s3.$r.amazonaws.com"}"#, N, ""),
    s3("GetBucketPolicy", 35, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","policy":""}"#, N, RES_BUCKET),
    s3("GetBucketVersioning", 25, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","versioning":""}"#, N, RES_BUCKET),
    s3("GetBucketEncryption", 25, R, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com","encryption":""}"#, N, RES_BUCKET),
    s3("GetBucketPublicAccessBlock", 20, R, r#"{"publicAccessBlock":"","bucketName":"$b","Host":"$b.s3.amazonaws.com"}"#, N, RES_BUCKET),
    s3(
        "PutBucketPolicy",
        2,
        W,
        r#"{"bucketPolicy":{"Version":"2012-10-17","Statement":[$W]},"bucketName":"$b","Host":"$b.s3.amazonaws.com","policy":""}"#,
        N,
        RES_BUCKET,
    ),
    s3(
        "PutBucketPublicAccessBlock",
        1,
        W,
        concat!(
            r#"{"PublicAccessBlockConfiguration":{"xmlns":"http://s3.amazonaws.com/doc/2006-03-01/","RestrictPublicBuckets":true,"#,
            r#""BlockPublicPolicy":true,"BlockPublicAcls":true,"IgnorePublicAcls":true},"bucketName":"$b","#,
            r#""Host":"$b.s3.amazonaws.com","publicAccessBlock":""}"#
        ),
        N,
        RES_BUCKET,
    ),
    s3(
        "CreateBucket",
        1,
        W,
        concat!(
            r#"{"CreateBucketConfiguration":{"LocationConstraint":"$r","xmlns":"http://s3.amazonaws.com/doc/2006-03-01/"},"#,
            r#""bucketName":"$b","Host":"s3.$r.amazonaws.com"}"#
        ),
        N,
        RES_BUCKET,
    ),
    s3("DeleteBucket", 1, W, r#"{"bucketName":"$b","Host":"$b.s3.amazonaws.com"}"#, N, RES_BUCKET),
    Api {
        extra: GET_OBJECT_EXTRA,
        ..s3("GetObject", 90, R, r#"{"bucketName":"$b","Host":"$b.s3.$r.amazonaws.com","key":"$o"}"#, N, RES_OBJECT)
    },
    Api {
        extra: PUT_OBJECT_EXTRA,
        ..s3(
            "PutObject",
            40,
            W,
            r#"{"bucketName":"$b","Host":"$b.s3.$r.amazonaws.com","key":"$o"}"#,
            r#"{"x-amz-server-side-encryption":"AES256","x-amz-version-id":"$J"}"#,
            RES_OBJECT,
        )
    },
    s3("DeleteObject", 6, W, r#"{"bucketName":"$b","Host":"$b.s3.$r.amazonaws.com","key":"$o"}"#, N, RES_OBJECT),
    // IAM
    api(IAM, "GetRole", 90, R, r#"{"roleName":"$R"}"#, N, ""),
    api(IAM, "ListRoles", 35, R, r#"{"maxItems":100}"#, N, ""),
    api(IAM, "GetUser", 30, R, r#"{"userName":"$U"}"#, N, ""),
    api(IAM, "ListUsers", 20, R, N, N, ""),
    api(IAM, "ListAttachedRolePolicies", 45, R, r#"{"roleName":"$R"}"#, N, ""),
    api(IAM, "ListRolePolicies", 30, R, r#"{"roleName":"$R"}"#, N, ""),
    api(IAM, "GetPolicy", 25, R, r#"{"policyArn":"arn:aws:iam::aws:policy/$P"}"#, N, ""),
    api(IAM, "GetPolicyVersion", 25, R, r#"{"policyArn":"arn:aws:iam::aws:policy/$P","versionId":"v3"}"#, N, ""),
    api(IAM, "ListAccessKeys", 15, R, r#"{"userName":"$U"}"#, N, ""),
    api(IAM, "ListMFADevices", 10, R, r#"{"userName":"$U"}"#, N, ""),
    api(
        IAM,
        "CreateUser",
        1,
        W,
        r#"{"userName":"$U","tags":[]}"#,
        r#"{"user":{"path":"/","userName":"$U","userId":"$V","arn":"arn:aws:iam::$a:user/$U","createDate":"$T"}}"#,
        RES_USER,
    ),
    api(
        IAM,
        "CreateAccessKey",
        2,
        W,
        r#"{"userName":"$U"}"#,
        r#"{"accessKey":{"userName":"$U","accessKeyId":"AKIA$y","status":"Active","createDate":"$T"}}"#,
        RES_USER,
    ),
    api(IAM, "DeleteAccessKey", 1, W, r#"{"userName":"$U","accessKeyId":"AKIA$y"}"#, N, RES_USER),
    api(IAM, "AttachRolePolicy", 3, W, r#"{"roleName":"$R","policyArn":"arn:aws:iam::aws:policy/$P"}"#, N, RES_ROLE),
    api(
        IAM,
        "PutRolePolicy",
        3,
        W,
        concat!(
            r#"{"roleName":"$R","policyName":"inline-s3-access","policyDocument":"{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n"#,
            r#"    {\n      \"Effect\": \"Allow\",\n      \"Action\": [\n        \"s3:GetObject\",\n        \"s3:PutObject\"\n      ],\n"#,
            r#"      \"Resource\": \"arn:aws:s3:::$b/*\"\n    }\n  ]\n}"}"#
        ),
        N,
        RES_ROLE,
    ),
    api(
        IAM,
        "CreateRole",
        2,
        W,
        concat!(
            r#"{"roleName":"$R","assumeRolePolicyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","#,
            r#"\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}","#,
            r#""description":"Managed by Terraform","maxSessionDuration":3600}"#
        ),
        concat!(
            r#"{"role":{"path":"/","roleName":"$R","roleId":"$O","arn":"arn:aws:iam::$a:role/$R","createDate":"$T","#,
            r#""assumeRolePolicyDocument":"%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C"#,
            r#"%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"}}"#
        ),
        RES_ROLE,
    ),
    api(IAM, "DeleteRole", 1, W, r#"{"roleName":"$R"}"#, N, RES_ROLE),
    api(
        IAM,
        "UpdateAssumeRolePolicy",
        1,
        W,
        concat!(
            r#"{"roleName":"$R","policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","#,
            r#"\"Principal\":{\"AWS\":\"arn:aws:iam::$a:root\"},\"Action\":\"sts:AssumeRole\",\"Condition\":{}}]}"}"#
        ),
        N,
        RES_ROLE,
    ),
    // STS
    api(
        STS,
        "AssumeRole",
        250,
        R,
        r#"{"roleArn":"arn:aws:iam::$a:role/$R","roleSessionName":"$S","durationSeconds":3600}"#,
        CREDENTIALS,
        RES_ROLE,
    ),
    api(STS, "GetCallerIdentity", 110, R, N, N, ""),
    api(
        STS,
        "AssumeRoleWithWebIdentity",
        40,
        R,
        r#"{"roleArn":"arn:aws:iam::$a:role/$R","roleSessionName":"$S","durationSeconds":3600}"#,
        concat!(
            r#"{"credentials":{"accessKeyId":"$K","sessionToken":"$z","expiration":"$E"},"#,
            r#""subjectFromWebIdentityToken":"system:serviceaccount:kube-system:aws-node","#,
            r#""assumedRoleUser":{"assumedRoleId":"$O:$S","arn":"arn:aws:sts::$a:assumed-role/$R/$S"},"#,
            r#""provider":"arn:aws:iam::$a:oidc-provider/oidc.eks.$r.amazonaws.com/id/5C9E2B8A4D1F7E3B6A0C9D8E7F6A5B4C","#,
            r#""audience":"sts.amazonaws.com"}"#
        ),
        RES_ROLE,
    ),
    api(
        STS,
        "GetSessionToken",
        5,
        R,
        r#"{"durationSeconds":43200}"#,
        r#"{"credentials":{"accessKeyId":"$K","sessionToken":"$z","expiration":"$E"}}"#,
        "",
    ),
    // KMS
    api(
        KMS,
        "Decrypt",
        120,
        R,
        r#"{"encryptionContext":{"aws:s3:arn":"arn:aws:s3:::$b/$o"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#,
        N,
        RES_KEY,
    ),
    api(
        KMS,
        "Decrypt",
        90,
        R,
        r#"{"encryptionContext":{"aws:lambda:FunctionArn":"arn:aws:lambda:$r:$a:function:$f"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#,
        N,
        RES_KEY,
    ),
    api(
        KMS,
        "Decrypt",
        70,
        R,
        concat!(
            r#"{"encryptionContext":{"SecretARN":"arn:aws:secretsmanager:$r:$a:secret:$x-$X","SecretVersionId":"$u"},"#,
            r#""encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#
        ),
        N,
        RES_KEY,
    ),
    api(
        KMS,
        "GenerateDataKey",
        120,
        R,
        r#"{"keyId":"arn:aws:kms:$r:$a:key/$k","encryptionContext":{"aws:s3:arn":"arn:aws:s3:::$b"},"numberOfBytes":32}"#,
        N,
        RES_KEY,
    ),
    api(KMS, "Encrypt", 20, R, r#"{"keyId":"alias/app-secrets","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#, N, RES_KEY),
    api(KMS, "DescribeKey", 35, R, r#"{"keyId":"$k"}"#, N, RES_KEY),
    api(KMS, "ListAliases", 15, R, N, N, ""),
    api(
        KMS,
        "CreateGrant",
        4,
        W,
        concat!(
            r#"{"keyId":"arn:aws:kms:$r:$a:key/$k","granteePrincipal":"arn:aws:iam::$a:role/$R","#,
            r#""operations":["Decrypt","GenerateDataKeyWithoutPlaintext","ReEncryptFrom","ReEncryptTo","CreateGrant","DescribeKey"],"#,
            r#""constraints":{"encryptionContextSubset":{"aws:ebs:id":"$l"}}}"#
        ),
        r#"{"grantId":"$h","keyId":"arn:aws:kms:$r:$a:key/$k"}"#,
        RES_KEY,
    ),
    api(
        KMS,
        "ScheduleKeyDeletion",
        1,
        W,
        r#"{"keyId":"$k","pendingWindowInDays":30}"#,
        r#"{"keyId":"arn:aws:kms:$r:$a:key/$k","deletionDate":"$E","keyState":"PendingDeletion","pendingWindowInDays":30}"#,
        RES_KEY,
    ),
    api(KMS, "DisableKey", 1, W, r#"{"keyId":"$k"}"#, N, RES_KEY),
    // Lambda
    api(LAMBDA, "ListFunctions20150331", 30, R, N, N, ""),
    api(LAMBDA, "GetFunction20150331v2", 25, R, r#"{"functionName":"$f"}"#, N, ""),
    api(LAMBDA, "GetFunctionConfiguration20150331v2", 20, R, r#"{"functionName":"$f"}"#, N, ""),
    api(
        LAMBDA,
        "UpdateFunctionCode20150331v2",
        4,
        W,
        r#"{"functionName":"$f","s3Bucket":"$b","s3Key":"lambda/$f/$h.zip","publish":true,"dryRun":false}"#,
        LAMBDA_CONFIG,
        RES_FUNCTION,
    ),
    api(
        LAMBDA,
        "UpdateFunctionConfiguration20150331v2",
        3,
        W,
        r#"{"functionName":"$f","memorySize":1024,"timeout":60}"#,
        LAMBDA_CONFIG,
        RES_FUNCTION,
    ),
    api(
        LAMBDA,
        "AddPermission20150331v2",
        2,
        W,
        concat!(
            r#"{"functionName":"$f","statementId":"AllowExecutionFromS3","action":"lambda:InvokeFunction","principal":"s3.amazonaws.com","#,
            r#""sourceArn":"arn:aws:s3:::$b","sourceAccount":"$a"}"#
        ),
        concat!(
            r#"{"statement":"{\"Sid\":\"AllowExecutionFromS3\",\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"s3.amazonaws.com\"},"#,
            r#"\"Action\":\"lambda:InvokeFunction\",\"Resource\":\"arn:aws:lambda:$r:$a:function:$f\",\"Condition\":"#,
            r#"{\"StringEquals\":{\"AWS:SourceAccount\":\"$a\"},\"ArnLike\":{\"AWS:SourceArn\":\"arn:aws:s3:::$b\"}}}"}"#
        ),
        RES_FUNCTION,
    ),
    api(
        LAMBDA,
        "CreateFunction20150331",
        1,
        W,
        concat!(
            r#"{"functionName":"$f","runtime":"python3.12","role":"arn:aws:iam::$a:role/$R","handler":"app.handler","#,
            r#""code":{"s3Bucket":"$b","s3Key":"lambda/$f.zip"},"timeout":30,"memorySize":512,"publish":true,"packageType":"Zip","#,
            r#""architectures":["arm64"]}"#
        ),
        LAMBDA_CONFIG,
        RES_FUNCTION,
    ),
    // CloudTrail
    api(TRAIL, "DescribeTrails", 20, R, r#"{"trailNameList":[],"includeShadowTrails":true}"#, N, ""),
    api(TRAIL, "GetTrailStatus", 20, R, r#"{"name":"arn:aws:cloudtrail:us-east-1:$a:trail/$0"}"#, N, RES_TRAIL),
    api(
        TRAIL,
        "LookupEvents",
        10,
        R,
        r#"{"lookupAttributes":[{"attributeKey":"EventName","attributeValue":"ConsoleLogin"}],"startTime":"$Y","endTime":"$T","maxResults":50}"#,
        N,
        "",
    ),
    api(TRAIL, "GetEventSelectors", 10, R, r#"{"trailName":"$0"}"#, N, RES_TRAIL),
    api(TRAIL, "ListTrails", 8, R, N, N, ""),
    api(TRAIL, "StopLogging", 1, W, r#"{"name":"arn:aws:cloudtrail:us-east-1:$a:trail/$0"}"#, N, RES_TRAIL),
    api(
        TRAIL,
        "UpdateTrail",
        1,
        W,
        r#"{"name":"$0","s3BucketName":"$b","isMultiRegionTrail":true,"enableLogFileValidation":true}"#,
        concat!(
            r#"{"name":"$0","s3BucketName":"$b","includeGlobalServiceEvents":true,"isMultiRegionTrail":true,"#,
            r#""trailARN":"arn:aws:cloudtrail:us-east-1:$a:trail/$0","logFileValidationEnabled":true,"isOrganizationTrail":false}"#
        ),
        RES_TRAIL,
    ),
    // SSM
    api(SSM, "GetParameter", 150, R, r#"{"name":"$p","withDecryption":true}"#, N, ""),
    api(SSM, "GetParameters", 60, R, r#"{"names":[$L],"withDecryption":true}"#, N, ""),
    api(SSM, "GetParametersByPath", 30, R, r#"{"path":"/prod/api","recursive":true,"withDecryption":true}"#, N, ""),
    api(SSM, "DescribeInstanceInformation", 25, R, r#"{"filters":[{"key":"InstanceIds","values":["$i"]}]}"#, N, ""),
    api(
        SSM,
        "UpdateInstanceInformation",
        110,
        W,
        concat!(
            r#"{"instanceId":"$i","agentVersion":"3.3.418.0","agentStatus":"Active","platformType":"Linux","platformName":"Amazon Linux","#,
            r#""platformVersion":"2023","iPAddress":"10.0.$2.17","computerName":"ip-10-0-$2-17.ec2.internal","agentName":"amazon-ssm-agent","#,
            r#""availabilityZone":"$Z","sSMConnectionChannel":"ssmmessages"}"#
        ),
        N,
        "",
    ),
    api(
        SSM,
        "PutParameter",
        4,
        W,
        r#"{"name":"$p","description":"","type":"SecureString","keyId":"alias/aws/ssm","overwrite":true,"tier":"Standard"}"#,
        r#"{"version":$N,"tier":"Standard"}"#,
        "",
    ),
    api(
        SSM,
        "SendCommand",
        3,
        W,
        r#"{"instanceIds":["$i"],"documentName":"AWS-RunShellScript","parameters":"HIDDEN_DUE_TO_SECURITY_REASONS","interactive":false}"#,
        SEND_COMMAND_RESP,
        "",
    ),
    api(
        SSM,
        "StartSession",
        2,
        W,
        r#"{"target":"$i"}"#,
        r#"{"sessionId":"$U-$q","tokenValue":"Value hidden due to security reasons."}"#,
        "",
    ),
    // Secrets Manager
    api(SECRETS, "GetSecretValue", 100, R, r#"{"secretId":"$x"}"#, N, ""),
    api(SECRETS, "GetSecretValue", 40, R, r#"{"secretId":"arn:aws:secretsmanager:$r:$a:secret:$x-$X"}"#, N, ""),
    api(SECRETS, "DescribeSecret", 25, R, r#"{"secretId":"$x"}"#, N, ""),
    api(SECRETS, "ListSecrets", 10, R, r#"{"maxResults":100}"#, N, ""),
    api(
        SECRETS,
        "PutSecretValue",
        2,
        W,
        r#"{"secretId":"$x","clientRequestToken":"$u"}"#,
        r#"{"arn":"arn:aws:secretsmanager:$r:$a:secret:$x-$X","name":"$x","versionId":"$u","versionStages":["AWSCURRENT"]}"#,
        RES_SECRET,
    ),
    api(SECRETS, "RotateSecret", 1, W, r#"{"secretId":"$x","clientRequestToken":"$u","rotateImmediately":true}"#, N, RES_SECRET),
    api(
        SECRETS,
        "CreateSecret",
        1,
        W,
        r#"{"name":"$x","clientRequestToken":"$u","description":"Managed by Terraform","kmsKeyId":"alias/aws/secretsmanager"}"#,
        r#"{"arn":"arn:aws:secretsmanager:$r:$a:secret:$x-$X","name":"$x","versionId":"$u"}"#,
        RES_SECRET,
    ),
    // RDS
    api(RDS, "DescribeDBInstances", 50, R, r#"{"dBInstanceIdentifier":"$d"}"#, N, ""),
    api(RDS, "DescribeDBClusters", 25, R, r#"{"includeShared":false}"#, N, ""),
    api(
        RDS,
        "DescribeDBSnapshots",
        15,
        R,
        r#"{"dBInstanceIdentifier":"$d","snapshotType":"automated","includeShared":false,"includePublic":false}"#,
        N,
        "",
    ),
    api(
        RDS,
        "CreateDBSnapshot",
        2,
        W,
        r#"{"dBSnapshotIdentifier":"$d-manual-$N","dBInstanceIdentifier":"$d"}"#,
        concat!(
            r#"{"dBSnapshotIdentifier":"$d-manual-$N","dBInstanceIdentifier":"$d","engine":"postgres","allocatedStorage":100,"#,
            r#""status":"creating","port":5432,"availabilityZone":"$Z","vpcId":"$v","instanceCreateTime":"$T","masterUsername":"app","#,
            r#""engineVersion":"16.3","licenseModel":"postgresql-license","snapshotType":"manual","encrypted":true,"#,
            r#""kmsKeyId":"arn:aws:kms:$r:$a:key/$k","dBSnapshotArn":"arn:aws:rds:$r:$a:snapshot:$d-manual-$N","#,
            r#""iAMDatabaseAuthenticationEnabled":false,"processorFeatures":[],"dbiResourceId":"db-$y","tagList":[],"#,
            r#""snapshotTarget":"region","storageThroughput":125,"dedicatedLogVolume":false}"#
        ),
        "",
    ),
    api(
        RDS,
        "ModifyDBInstance",
        2,
        W,
        r#"{"dBInstanceIdentifier":"$d","dBInstanceClass":"db.r6g.xlarge","applyImmediately":true}"#,
        concat!(
            r#"{"dBInstanceIdentifier":"$d","dBInstanceClass":"db.r6g.large","engine":"postgres","dBInstanceStatus":"available","#,
            r#""pendingModifiedValues":{"dBInstanceClass":"db.r6g.xlarge"},"multiAZ":true,"engineVersion":"16.3","#,
            r#""storageEncrypted":true,"dbiResourceId":"db-$y","deletionProtection":true}"#
        ),
        "",
    ),
    // DynamoDB
    api(DDB, "DescribeTable", 70, R, r#"{"tableName":"$t"}"#, N, RES_TABLE),
    api(DDB, "ListTables", 25, R, N, N, ""),
    api(DDB, "DescribeContinuousBackups", 10, R, r#"{"tableName":"$t"}"#, N, RES_TABLE),
    api(DDB, "UpdateTable", 2, W, r#"{"tableName":"$t","billingMode":"PAY_PER_REQUEST"}"#, TABLE_DESCRIPTION, RES_TABLE),
    api(
        DDB,
        "CreateTable",
        1,
        W,
        concat!(
            r#"{"tableName":"$t","attributeDefinitions":[{"attributeName":"pk","attributeType":"S"},{"attributeName":"sk","attributeType":"S"}],"#,
            r#""keySchema":[{"attributeName":"pk","keyType":"HASH"},{"attributeName":"sk","keyType":"RANGE"}],"#,
            r#""billingMode":"PAY_PER_REQUEST","sSESpecification":{"enabled":true}}"#
        ),
        TABLE_DESCRIPTION,
        RES_TABLE,
    ),
    // CloudWatch Logs
    api(LOGS, "DescribeLogStreams", 80, R, r#"{"logGroupName":"$G","orderBy":"LastEventTime","descending":true,"limit":50}"#, N, ""),
    api(LOGS, "DescribeLogGroups", 60, R, r#"{"logGroupNamePrefix":"/aws/lambda/"}"#, N, ""),
    api(LOGS, "FilterLogEvents", 20, R, r#"{"logGroupName":"$G","startTime":$M,"filterPattern":"ERROR","interleaved":true}"#, N, ""),
    api(LOGS, "CreateLogStream", 80, W, r#"{"logGroupName":"$G","logStreamName":"$D/[$$LATEST]$H"}"#, N, ""),
    api(LOGS, "CreateLogGroup", 6, W, r#"{"logGroupName":"$G"}"#, N, ""),
    api(LOGS, "PutRetentionPolicy", 3, W, r#"{"logGroupName":"$G","retentionInDays":30}"#, N, ""),
    api(LOGS, "DeleteLogGroup", 1, W, r#"{"logGroupName":"$G"}"#, N, ""),
    // CloudWatch
    api(CW, "GetMetricData", 110, R, r#"{"metricDataQueries":[$Q],"startTime":"$Y","endTime":"$T"}"#, N, ""),
    api(CW, "DescribeAlarms", 60, R, r#"{"alarmNames":["$w"],"maxRecords":100}"#, N, ""),
    api(CW, "ListMetrics", 30, R, r#"{"namespace":"AWS/EC2","metricName":"CPUUtilization","recentlyActive":"PT3H"}"#, N, ""),
    api(
        CW,
        "GetMetricStatistics",
        40,
        R,
        concat!(
            r#"{"namespace":"AWS/RDS","metricName":"CPUUtilization","dimensions":[{"name":"DBInstanceIdentifier","value":"$d"}],"#,
            r#""startTime":"$Y","endTime":"$T","period":300,"statistics":["Average","Maximum"]}"#
        ),
        N,
        "",
    ),
    api(
        CW,
        "PutMetricAlarm",
        4,
        W,
        concat!(
            r#"{"alarmName":"$w","alarmDescription":"Managed by Terraform","actionsEnabled":true,"alarmActions":["arn:aws:sns:$r:$a:ops-alerts"],"#,
            r#""metricName":"CPUUtilization","namespace":"AWS/EC2","statistic":"Average","dimensions":[{"name":"InstanceId","value":"$i"}],"#,
            r#""period":300,"evaluationPeriods":3,"threshold":80.0,"comparisonOperator":"GreaterThanThreshold","treatMissingData":"missing"}"#
        ),
        N,
        "",
    ),
    api(CW, "DeleteAlarms", 1, W, r#"{"alarmNames":["$w"]}"#, N, ""),
    // ECR
    api(ECR, "GetAuthorizationToken", 90, R, r#"{"registryIds":["$a"]}"#, N, ""),
    api(
        ECR,
        "BatchGetImage",
        45,
        R,
        concat!(
            r#"{"registryId":"$a","repositoryName":"$e","imageIds":[{"imageTag":"latest"}],"acceptedMediaTypes":["#,
            r#""application/vnd.docker.distribution.manifest.v2+json","application/vnd.oci.image.manifest.v1+json","#,
            r#""application/vnd.oci.image.index.v1+json"]}"#
        ),
        N,
        RES_REPO,
    ),
    api(ECR, "GetDownloadUrlForLayer", 45, R, r#"{"registryId":"$a","repositoryName":"$e","layerDigest":"sha256:$h"}"#, N, RES_REPO),
    api(ECR, "DescribeRepositories", 15, R, N, N, ""),
    api(ECR, "DescribeImages", 15, R, r#"{"repositoryName":"$e","imageIds":[{"imageTag":"latest"}]}"#, N, RES_REPO),
    api(
        ECR,
        "PutImage",
        4,
        W,
        r#"{"repositoryName":"$e","imageTag":"main-$q","registryId":"$a","imageManifestMediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        concat!(
            r#"{"image":{"registryId":"$a","repositoryName":"$e","imageId":{"imageDigest":"sha256:$h","imageTag":"main-$q"},"#,
            r#""imageManifestMediaType":"application/vnd.oci.image.manifest.v1+json"}}"#
        ),
        RES_REPO,
    ),
    // EKS
    api(EKS, "DescribeCluster", 45, R, r#"{"name":"$c"}"#, N, ""),
    api(EKS, "ListClusters", 15, R, N, N, ""),
    api(EKS, "ListNodegroups", 10, R, r#"{"name":"$c"}"#, N, ""),
    api(EKS, "DescribeNodegroup", 10, R, r#"{"name":"$c","nodegroupName":"$c-ng-1"}"#, N, ""),
    api(
        EKS,
        "CreateNodegroup",
        1,
        W,
        concat!(
            r#"{"clusterName":"$c","nodegroupName":"$c-ng-$N","scalingConfig":{"minSize":2,"maxSize":10,"desiredSize":3},"#,
            r#""subnets":["$s"],"instanceTypes":["m6i.xlarge"],"amiType":"AL2023_x86_64_STANDARD","#,
            r#""nodeRole":"arn:aws:iam::$a:role/eks-node-role","clientRequestToken":"$u"}"#
        ),
        concat!(
            r#"{"nodegroup":{"nodegroupName":"$c-ng-$N","nodegroupArn":"arn:aws:eks:$r:$a:nodegroup/$c/$c-ng-$N/$H","#,
            r#""clusterName":"$c","version":"1.29","status":"CREATING","capacityType":"ON_DEMAND"}}"#
        ),
        "",
    ),
    // CloudFormation
    api(CFN, "DescribeStacks", 45, R, r#"{"stackName":"$C"}"#, N, ""),
    api(CFN, "DescribeStackEvents", 25, R, r#"{"stackName":"arn:aws:cloudformation:$r:$a:stack/$C/$H"}"#, N, ""),
    api(CFN, "ListStacks", 15, R, r#"{"stackStatusFilter":["CREATE_COMPLETE","UPDATE_COMPLETE","UPDATE_ROLLBACK_COMPLETE"]}"#, N, ""),
    api(CFN, "GetTemplate", 8, R, r#"{"stackName":"$C","templateStage":"Original"}"#, N, ""),
    api(
        CFN,
        "CreateStack",
        2,
        W,
        concat!(
            r#"{"stackName":"$C","templateURL":"https://s3.$r.amazonaws.com/$b/templates/$C.yaml","parameters":["#,
            r#"{"parameterKey":"Environment","parameterValue":"prod"},{"parameterKey":"VpcId","parameterValue":"$v"}],"#,
            r#""capabilities":["CAPABILITY_NAMED_IAM"],"tags":[$A],"clientRequestToken":"$u"}"#
        ),
        r#"{"stackId":"arn:aws:cloudformation:$r:$a:stack/$C/$H"}"#,
        "",
    ),
    api(
        CFN,
        "UpdateStack",
        3,
        W,
        concat!(
            r#"{"stackName":"$C","usePreviousTemplate":true,"parameters":[{"parameterKey":"Environment","usePreviousValue":true},"#,
            r#"{"parameterKey":"ImageTag","parameterValue":"main-$q"}],"capabilities":["CAPABILITY_NAMED_IAM"],"clientRequestToken":"$u"}"#
        ),
        r#"{"stackId":"arn:aws:cloudformation:$r:$a:stack/$C/$H"}"#,
        "",
    ),
    api(CFN, "DeleteStack", 1, W, r#"{"stackName":"$C"}"#, N, ""),
    // Organizations
    api(ORGS, "DescribeOrganization", 20, R, N, N, ""),
    api(ORGS, "ListAccounts", 10, R, r#"{"maxResults":20}"#, N, ""),
    api(ORGS, "DescribeAccount", 8, R, r#"{"accountId":"$a"}"#, N, ""),
];

// Resource names (pools; lower indexes are busier).
pub(super) const BUCKETS: [&str; 14] = [
    "acme-prod-assets",
    "acme-app-uploads",
    "acme-data-lake-raw",
    "acme-terraform-state",
    "aws-cloudtrail-logs-482910573316-9f3c2a1b",
    "acme-build-artifacts",
    "cf-templates-1q2w3e4r5t6y-us-east-1",
    "acme-athena-results",
    "acme-backups-eu-west-1",
    "acme-static-website",
    "acme-ml-training-data",
    "acme-vpc-flow-logs",
    "acme-config-snapshots",
    "acme-logs-archive",
];
pub(super) const KEY_PREFIXES: [(&str, &str); 6] = [
    ("uploads", ".jpg"),
    ("raw/events", ".json.gz"),
    ("exports/orders", ".csv"),
    ("AWSLogs/482910573316/CloudTrail/us-east-1", ".json.gz"),
    ("thumbnails", ".webp"),
    ("models/checkpoints", ".pt"),
];
pub(super) const FUNCTIONS: [&str; 10] = [
    "process-orders",
    "resize-images",
    "stripe-webhook",
    "nightly-report",
    "auth-authorizer",
    "ingest-events",
    "cleanup-snapshots",
    "slack-notifier",
    "etl-transform",
    "cost-export",
];
pub(super) const TABLES: [&str; 8] =
    ["orders", "users", "sessions", "inventory", "payments", "audit-log", "feature-flags", "terraform-locks"];
pub(super) const LOG_GROUPS: [&str; 10] = [
    "/aws/lambda/process-orders",
    "/aws/lambda/resize-images",
    "/ecs/api-service",
    "/aws/eks/prod-main/cluster",
    "/aws/rds/instance/orders-db/postgresql",
    "/aws/lambda/stripe-webhook",
    "/ecs/worker",
    "/aws/codebuild/build-backend",
    "API-Gateway-Execution-Logs_a1b2c3d4e5/prod",
    "/aws/vpc/flow-logs",
];
pub(super) const PARAMETERS: [&str; 10] = [
    "/prod/api/database_url",
    "/prod/api/redis_url",
    "/prod/payments/stripe_key",
    "/shared/datadog/api_key",
    "/staging/api/database_url",
    "/prod/feature/flags",
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "/aws/service/eks/optimized-ami/1.29/amazon-linux-2/recommended/image_id",
    "/dev/app/config",
    "/prod/api/jwt_signing_key",
];
pub(super) const SECRET_NAMES: [&str; 6] = [
    "prod/api/postgres",
    "prod/payments/stripe",
    "staging/api/postgres",
    "prod/datadog/api-key",
    "prod/oauth/google-client",
    "dev/api/postgres",
];
pub(super) const DATABASES: [&str; 5] = ["orders-db", "analytics-replica", "users-aurora-instance-1", "legacy-mysql", "reporting-db"];
pub(super) const CLUSTERS: [&str; 3] = ["prod-main", "staging", "data-platform"];
pub(super) const STACKS: [&str; 7] =
    ["network-baseline", "prod-api", "datadog-integration", "eks-prod-main-nodegroup", "CDKToolkit", "static-site", "guardrails"];
pub(super) const REPOS: [&str; 6] = ["api-service", "worker", "frontend", "base-images/python", "datadog/agent", "migrations"];
pub(super) const POLICIES: [&str; 7] = [
    "ReadOnlyAccess",
    "AmazonS3ReadOnlyAccess",
    "AdministratorAccess",
    "AmazonEC2ContainerRegistryReadOnly",
    "CloudWatchAgentServerPolicy",
    "AmazonSSMManagedInstanceCore",
    "SecurityAudit",
];
pub(super) const TRAILS: [&str; 3] = ["org-trail", "management-events", "s3-data-events"];
pub(super) const ALARMS: [&str; 6] = [
    "api-5xx-rate",
    "orders-db-cpu-high",
    "lambda-errors-process-orders",
    "billing-estimated-charges",
    "eks-node-disk-full",
    "sqs-dlq-not-empty",
];
pub(super) const TAGS: [(&str, &str); 10] = [
    ("Environment", "prod"),
    ("Team", "platform"),
    ("Service", "orders-api"),
    ("ManagedBy", "terraform"),
    ("CostCenter", "cc-1042"),
    ("Owner", "alice@example.com"),
    ("Name", "prod-api-asg"),
    ("kubernetes.io/cluster/prod-main", "owned"),
    ("Backup", "daily"),
    ("DataClassification", "internal"),
];
/// EC2 filters: (name, value); "" values come from pools.
pub(super) const FILTERS: [(&str, &str); 7] = [
    ("instance-state-name", "running"),
    ("tag:Environment", "prod"),
    ("vpc-id", ""),
    ("tag:Team", "platform"),
    ("instance-type", "m6i.large"),
    ("tag:aws:autoscaling:groupName", "eks-prod-main-ng-1-3cc5b4d1"),
    ("availability-zone", ""),
];
/// CloudWatch metrics: (namespace, metric, dimension, value kind).
pub(super) const METRICS: [(&str, &str, &str, u8); 8] = [
    ("AWS/EC2", "CPUUtilization", "InstanceId", b'i'),
    ("AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", b'd'),
    ("AWS/Lambda", "Errors", "FunctionName", b'f'),
    ("AWS/EC2", "NetworkIn", "InstanceId", b'i'),
    ("AWS/Lambda", "Duration", "FunctionName", b'f'),
    ("AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", b't'),
    ("AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", b'd'),
    ("AWS/EC2", "StatusCheckFailed", "InstanceId", b'i'),
];
/// Bucket policy statement (`$#` is its index, `$!` an account).
pub(super) const POLICY_STATEMENT: &str = concat!(
    r#"{"Sid":"CrossAccountRead$#","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::$!:root"},"Action":["s3:GetObject","s3:ListBucket"],"#,
    r#""Resource":["arn:aws:s3:::$b","arn:aws:s3:::$b/*"],"Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"},"#,
    r#""Bool":{"aws:SecureTransport":"true"}}}"#
);
/// Prefixes of EC2-style ids and the pool sizes they are drawn from.
pub(super) const ID_KINDS: [(u8, &str, u64); 7] = [
    (b'i', "i-", 300),
    (b'g', "sg-", 60),
    (b'v', "vpc-", 6),
    (b's', "subnet-", 36),
    (b'l', "vol-", 300),
    (b'm', "ami-", 24),
    (b'n', "snap-", 120),
];
/// Prefixes of padding ids (`--record-bytes`), as fixed 8-byte blocks and
/// their lengths.
pub(super) const PAD_IDS: [([u8; 8], usize); 6] =
    [(*b"i-000000", 2), (*b"vol-0000", 4), (*b"eni-0000", 4), (*b"snap-000", 5), (*b"sg-00000", 3), (*b"subnet-0", 7)];

/// APIs that only agents and services call (they have them in their
/// `Apis::Only` lists): people and pipelines do not.
const MACHINE_ONLY: [&str; 5] =
    ["UpdateInstanceInformation", "CreateLogStream", "GetDownloadUrlForLayer", "BatchGetImage", "AssumeRoleWithWebIdentity"];

impl Principal {
    pub(super) fn calls(&self, api: &Api) -> bool {
        match self.apis {
            Apis::All => !MACHINE_ONLY.contains(&api.name),
            Apis::Reads => api.read_only && !api.is_data(),
            Apis::Only(names) => names.contains(&api.name),
        }
    }
}
