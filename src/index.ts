export default {fetch(){return new Response('x')}}; export class RepoHub {}; export class GlobalHub {}
